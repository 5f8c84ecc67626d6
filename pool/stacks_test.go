package pool

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestLogDumpStacks: a faulthandler dump is split by thread header, either
// form of it; the stack of each thread whose connection serves a request is
// logged with that request, and everything else (text before the first
// header, idle threads, a thread with no Python frame) together.
func TestLogDumpStacks(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	serving, idle := &Conn{thread: 0x7f0000000001}, &Conn{thread: 0x7f0000000002}
	serving.Serving(Request{Method: "POST", URI: "/slow?x=1", Began: time.Now().Add(-3 * time.Second)})
	proc := &process{conns: []*Conn{serving, idle}, log: zap.New(core)}
	dump := "Fatal Python error: something\n\n" +
		"Thread 0x00007f0000000002 (most recent call first):\n  File \"/srv/w.py\", line 3 in serve\n\n" +
		"Current thread 0x00007f0000000001 (most recent call first):\n  File \"/srv/app.py\", line 12 in stuck\n  File \"/srv/app.py\", line 20 in application\n\n" +
		"Thread 0x00007f0000000003 (most recent call first):\n  <no Python frame>\n"
	proc.logDumpStacks([]byte(dump), "others")

	entries := logs.AllUntimed()
	if len(entries) != 2 {
		t.Fatalf("%d entries, want 2: %+v", len(entries), entries)
	}
	request := entries[0].ContextMap()
	if entries[0].Message != "a request was still running; the Python stack of its thread (faulthandler)" ||
		request["method"] != "POST" || request["uri"] != "/slow?x=1" || request["thread"] != "0x00007f0000000001" ||
		request["stack"] != "  File \"/srv/app.py\", line 12 in stuck\n  File \"/srv/app.py\", line 20 in application" ||
		request["running_for"].(time.Duration) < 3*time.Second {
		t.Errorf("the serving thread's entry: %s %v", entries[0].Message, request)
	}
	others := entries[1].ContextMap()["stacks"].(string)
	for _, want := range []string{"Fatal Python error", "0x00007f0000000002", " in serve\n", "0x00007f0000000003", "<no Python frame>"} {
		if entries[1].Message != "others" || !strings.Contains(others, want) {
			t.Errorf("the others' entry %q lacks %q: %s", entries[1].Message, want, others)
		}
	}
	if strings.Contains(others, "stuck") {
		t.Errorf("the serving thread's stack is among the others: %s", others)
	}

	// Once released, a connection's thread is no longer tagged.
	serving.Serving(Request{})
	logs.TakeAll()
	proc.logDumpStacks([]byte(dump), "others")
	if entries := logs.AllUntimed(); len(entries) != 1 || entries[0].Message != "others" {
		t.Errorf("after the release: %+v", entries)
	}
}
