package caddywsgi_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSchedulingPolicy: every thread of a worker runs under SCHED_BATCH by
// default, and under the policy scheduling_policy names.
func TestSchedulingPolicy(t *testing.T) {
	for setting, want := range map[string]uint32{"": unix.SCHED_BATCH, "scheduling_policy other": unix.SCHED_NORMAL} {
		c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		threads 3
		`+setting+`
	}
}`)
		_, pid := get(t, plainClient, "GET", c.URL("/pid"), nil)
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%s/task", pid))
		if err != nil {
			t.Fatal(err)
		}
		// The main thread, three request threads and the control thread.
		if len(tasks) < 5 {
			t.Errorf("%d threads in the worker, want 5 or more", len(tasks))
		}
		for _, task := range tasks {
			tid, _ := strconv.Atoi(task.Name())
			attr, err := unix.SchedGetAttr(tid, 0)
			if err != nil {
				t.Fatal(err)
			}
			if attr.Policy != want {
				t.Errorf("%q: thread %d of worker %s runs under policy %d, want %d", setting, tid, pid, attr.Policy, want)
			}
		}
		c.stop()
	}
}
