package caddywsgi

import "testing"

// TestApacheIPRange: every form of a Require ip argument Apache takes
// becomes what remote_ip takes, and anything else is refused.
func TestApacheIPRange(t *testing.T) {
	for arg, want := range map[string]string{
		"192.0.2.1":                 "192.0.2.1",
		"10":                        "10.0.0.0/8",
		"10.1":                      "10.1.0.0/16",
		"172.20.3.":                 "172.20.3.0/24",
		"10.1.2.3/16":               "10.1.0.0/16",
		"192.168.0.0/255.255.254.0": "192.168.0.0/23",
		"2001:db8::a00:20ff:fea7:1": "2001:db8::a00:20ff:fea7:1",
		"2001:db8::/32":             "2001:db8::/32",
	} {
		if got, ok := apacheIPRange(arg); !ok || got != want {
			t.Errorf("%s: %q %v, want %q", arg, got, ok, want)
		}
	}
	for _, arg := range []string{"example.com", "10.1.2.3.4", "256.1", "10.01", "10.1.0.0/255.0.255.0", "10.1.0.0/33", ""} {
		if got, ok := apacheIPRange(arg); ok {
			t.Errorf("%s: %q, want a refusal", arg, got)
		}
	}
}
