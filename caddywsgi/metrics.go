package caddywsgi

import (
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
)

const metricsNamespace = "caddy_wsgi"

// poolMetrics are the series of a pool that its handlers observe, labelled
// with its group. They live beside the pool in pools, so that a config
// reload that keeps the pool keeps them, as it keeps the counters the pool
// keeps itself (which metricsCollector reads from pool.Stats).
type poolMetrics struct {
	requests  *prometheus.CounterVec // by the status code Caddy sent
	duration  prometheus.Histogram
	queueWait prometheus.Histogram

	// requests' counters by code, once used: WithLabelValues hashes and
	// looks up its label, and formats the code, on every call.
	byCode [1000]atomic.Pointer[prometheus.Counter]
}

// requestsFor returns the requests counter of a status code.
func (m *poolMetrics) requestsFor(code int) prometheus.Counter {
	if code < 0 || code >= len(m.byCode) {
		return m.requests.WithLabelValues(strconv.Itoa(code))
	}
	if c := m.byCode[code].Load(); c != nil {
		return *c
	}
	c := m.requests.WithLabelValues(strconv.Itoa(code))
	m.byCode[code].Store(&c)
	return c
}

func newPoolMetrics(group string) *poolMetrics {
	labels := prometheus.Labels{"group": group}
	return &poolMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "requests_total", ConstLabels: labels,
			Help: "Requests handed to the group's worker processes, by the status code Caddy sent.",
		}, []string{"code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "request_duration_seconds", ConstLabels: labels,
			Help:    "Time from handing a request to a worker thread to the end of its response.",
			Buckets: prometheus.DefBuckets,
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "queue_wait_seconds", ConstLabels: labels,
			Help: "Time a request handed to a worker thread waited for a free one.",
			// From the microseconds of a free thread to the queue_timeout
			// range of seconds.
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
	}
}

// served accounts for a request that a worker thread of run's pool was
// handed after waiting queued for it, at handed, and whose handler returns
// err (nil when it panics to break the response off): in the metrics, and
// as the access log's wsgi_* fields.
func (e *exchange) served(run *groupRun, queued time.Duration, handed time.Time, err error) {
	app := time.Since(handed)
	m := run.metrics
	m.requestsFor(e.sentStatus(err)).Inc()
	m.duration.Observe(app.Seconds())
	m.queueWait.Observe(queued.Seconds())
	if !e.h.accessLog {
		return
	}
	if extra, ok := e.r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		extra.Add(zap.Inline(&accessFields{run.cfg.Name, e.c.PID(), queued, app}))
	}
}

// accessFields are the access log's wsgi_* fields, added as one: each
// ExtraLogFields.Add costs as much again, and the fields are only encoded
// if there is an access log.
type accessFields struct {
	group      string
	pid        int
	queue, app time.Duration
}

func (f *accessFields) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("wsgi_group", f.group)
	enc.AddInt("wsgi_pid", f.pid)
	enc.AddFloat64("wsgi_queue_s", f.queue.Seconds())
	enc.AddFloat64("wsgi_app_s", f.app.Seconds())
	return nil
}

// sentStatus is the status of the response, as Caddy's access log gives it:
// the application's once its head is written, else that of the handler's
// error, which Caddy's error handling sends.
func (e *exchange) sentStatus(err error) int {
	switch {
	case e.head == headSent:
		return e.status
	case e.sink == sinkClientGone:
		return 499
	case err != nil:
		return errorStatus(err)
	}
	return http.StatusOK
}

// errorStatus is the status Caddy's error handling sends for a handler's
// error. Apart from sentStatus, whose every call would otherwise allocate
// the HandlerError errors.As fills.
func errorStatus(err error) int {
	var he caddyhttp.HandlerError
	if errors.As(err, &he) && he.StatusCode != 0 {
		return he.StatusCode
	}
	return http.StatusInternalServerError
}

// metricsCollector gives Caddy's metrics registry the series of the
// config's groups: gauges and counters read from their pools at scrape
// time, which costs requests nothing, and the poolMetrics they observe.
type metricsCollector struct{ app *App }

func metricsDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(metricsNamespace+"_"+name, help, append([]string{"group"}, labels...), nil)
}

var (
	processesDesc = metricsDesc("processes",
		"Worker processes running: in service, and those starting, draining or stopping beside them.")
	threadsDesc = metricsDesc("threads",
		"Threads of the running worker processes.")
	busyThreadsDesc = metricsDesc("busy_threads",
		"Threads serving a request.")
	queueDepthDesc = metricsDesc("queue_depth",
		"Requests waiting for a free thread.")
	rssDesc = metricsDesc("rss_bytes",
		"Resident memory of the running worker processes, summed.")
	restartsDesc = metricsDesc("process_restarts_total",
		"Worker processes replaced, by why.", "reason")
	rejectionsDesc = metricsDesc("queue_rejections_total",
		"Requests refused a thread: max_queue requests waited already (full), or queue_timeout passed (timeout).", "why")
)

// Describe describes nothing, which makes the collector unchecked: its
// series are those of whichever groups the config has.
func (metricsCollector) Describe(chan<- *prometheus.Desc) {}

// Collect reads the config's started pools. The app's runs are all
// registered before any app of the config starts, and so before a scrape.
func (c metricsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, run := range c.app.runs {
		select {
		case <-run.ready:
		default:
			continue
		}
		if run.pool == nil {
			continue
		}
		s := run.pool.Stats()
		var processes, busy int
		var rss int64
		for _, w := range s.Workers {
			if w.State != pool.Dead {
				processes++
				busy += w.BusyThreads
				rss += w.RSS
			}
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, s.Name)
		}
		gauge(processesDesc, float64(processes))
		gauge(threadsDesc, float64(processes*s.Threads))
		gauge(busyThreadsDesc, float64(busy))
		gauge(queueDepthDesc, float64(s.QueueDepth))
		gauge(rssDesc, float64(rss))
		for reason, n := range s.Restarts {
			ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(n), s.Name, string(reason))
		}
		ch <- prometheus.MustNewConstMetric(rejectionsDesc, prometheus.CounterValue, float64(s.QueueFull), s.Name, "full")
		ch <- prometheus.MustNewConstMetric(rejectionsDesc, prometheus.CounterValue, float64(s.QueueTimeouts), s.Name, "timeout")
		run.metrics.requests.Collect(ch)
		run.metrics.duration.Collect(ch)
		run.metrics.queueWait.Collect(ch)
	}
}

// Interface guards
var (
	_ prometheus.Collector    = metricsCollector{}
	_ zapcore.ObjectMarshaler = (*accessFields)(nil)
)
