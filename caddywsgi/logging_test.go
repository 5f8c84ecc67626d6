package caddywsgi_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// logEntry waits for the log entry that contains every one of parts and
// decodes it.
func logEntry(t *testing.T, c *caddy, parts ...string) map[string]any {
	t.Helper()
	line := c.waitLog(parts...)
	var entry map[string]any
	if err := json.Unmarshal([]byte(line[strings.IndexByte(line, '{'):]), &entry); err != nil {
		t.Fatalf("log line %q: %v", line, err)
	}
	return entry
}

// checkLevels checks the entries of one log_each_level call of
// logging_levels.wsgi or the Django project: each record at its own level,
// with its logger, tied to the request (method and uri) or to none, and the
// traceback of logger.exception in the same entry.
func checkLevels(t *testing.T, c *caddy, logger, where, format, uri string) {
	t.Helper()
	for _, tc := range []struct{ name, pyLevel, level string }{
		{"debug", "DEBUG", "debug"}, {"info", "INFO", "info"}, {"warn", "WARNING", "warn"},
		{"error", "ERROR", "error"}, {"critical", "CRITICAL", "error"}, {"exception", "ERROR", "error"},
	} {
		msg := strings.NewReplacer("{level}", tc.pyLevel, "{name}", logger, "{msg}", tc.name+"-"+where).Replace(format)
		entry := logEntry(t, c, `"msg":"`+msg)
		if entry["level"] != tc.level || entry["python_logger"] != logger {
			t.Errorf("%s: level %v, python_logger %v; want %s, %s", msg, entry["level"], entry["python_logger"], tc.level, logger)
		}
		if uri == "" && (entry["uri"] != nil || entry["method"] != nil) {
			t.Errorf("%s: tied to a request: %v %v", msg, entry["method"], entry["uri"])
		}
		if uri != "" && (entry["uri"] != uri || entry["method"] != "GET") {
			t.Errorf("%s: method %v uri %v, want GET %s", msg, entry["method"], entry["uri"], uri)
		}
		text, _ := entry["msg"].(string)
		if tc.name == "exception" {
			if !strings.HasPrefix(text, msg+"\nTraceback (most recent call last):\n") ||
				!strings.HasSuffix(text, "\nZeroDivisionError: division by zero") {
				t.Errorf("logger.exception: no traceback in its entry: %q", text)
			}
		} else if text != msg {
			t.Errorf("msg %q, want %q", text, msg)
		}
	}
}

// TestPythonLoggingLevels: records of Python's logging, through the handler
// logging.basicConfig installs (and one on sys.stdout), reach Caddy's log at
// their own level with their logger's name, from a request thread (tied to
// the request), from a thread of the application's own and at import time.
func TestPythonLoggingLevels(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	route {
		wsgi_script /levels {apps}/logging_levels.wsgi {
			python {python}
		}
	}
}`)
	format := "{level} {name}: {msg}"
	for _, query := range []string{"stderr", "stdout"} {
		logger, msgFormat := "levels.app", format
		if query == "stdout" {
			logger, msgFormat = "levels.stdout", "{msg}"
		}
		for _, path := range []string{"/levels/request", "/levels/background"} {
			if res, body := get(t, plainClient, "GET", c.URL(path+"?"+query), nil); res.StatusCode != 200 || body != "logged" {
				t.Fatalf("%s: %d %q", path, res.StatusCode, body)
			}
		}
		checkLevels(t, c, logger, "request-"+query, msgFormat, "/levels/request?"+query)
		checkLevels(t, c, logger, "background-"+query, msgFormat, "")
	}
	checkLevels(t, c, "levels.app", "import", format, "")

	// Output that is not a record keeps the level of its stream.
	for _, tc := range []struct{ text, level string }{{"print-request", "info"}, {"wsgi-errors-request", "error"}} {
		entry := logEntry(t, c, `"msg":"`+tc.text+`"`)
		if entry["level"] != tc.level || entry["python_logger"] != nil {
			t.Errorf("%s: level %v, python_logger %v; want %s and none", tc.text, entry["level"], entry["python_logger"], tc.level)
		}
	}
}

// TestDjangoLoggingLevels: a Django LOGGING dict with a StreamHandler on
// stdout gets the same as logging.basicConfig: each record at its own level
// with its logger, from a request, from another thread and at import time.
// Django's own django.request records, on stderr, too.
func TestDjangoLoggingLevels(t *testing.T) {
	site, _ := djangoSite(t)
	c := startCaddy(t, site)
	for _, where := range []string{"request", "background"} {
		if res, body := get(t, plainClient, "GET", c.URL("/django/log/"+where), nil); res.StatusCode != 200 {
			t.Fatalf("%s: %d %q", where, res.StatusCode, body)
		}
	}
	format := "{level} {name}: {msg}"
	checkLevels(t, c, "djangoproject.logdemo", "django-request", format, "/django/log/request")
	checkLevels(t, c, "djangoproject.logdemo", "django-background", format, "")
	checkLevels(t, c, "djangoproject.logdemo", "import", format, "")

	get(t, plainClient, "GET", c.URL("/django/error"), nil)
	entry := logEntry(t, c, `"msg":"Internal Server Error: /django/error\nTraceback`, "ZeroDivisionError: django-boom")
	if entry["level"] != "error" || entry["python_logger"] != "django.request" || entry["uri"] != "/django/error" {
		t.Errorf("Django's record of a 500: %v", entry)
	}
}
