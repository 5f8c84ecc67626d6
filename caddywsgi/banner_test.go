package caddywsgi

import (
	"strings"
	"testing"
	"time"
)

// TestBannerHTTPS: with --domain, the banner says what Caddy's automatic
// HTTPS does to this machine: it listens on port 80 too, and for a name no
// public CA certifies it adds its local CA to the system trust store,
// unless --no-trust.
func TestBannerHTTPS(t *testing.T) {
	for _, tc := range []struct {
		name          string
		domain, port  string
		noTrust       bool
		want, notWant []string
	}{
		{"plain HTTP", "", "8000", false, nil, []string{"port 80", "trust store", "Certificate"}},
		{"local name", "wsgi.localhost", "443", false,
			[]string{"HTTP Redirect      : port 80 (Caddy listens there too: it redirects HTTP to HTTPS)",
				"Certificate        : from Caddy's local CA, whose root certificate Caddy adds to the system trust store (--no-trust leaves it out)"}, nil},
		{"local name, --no-trust", "app.internal", "8443", true,
			[]string{"HTTP Redirect      : port 80", "left out of the system trust store (--no-trust): clients must trust /"},
			[]string{"adds to the system trust store"}},
		{"public name", "example.com", "443", false,
			[]string{"HTTP Redirect      : port 80 (Caddy listens there too: it redirects HTTP to HTTPS and answers ACME HTTP challenges)",
				"Certificate        : from Let's Encrypt or ZeroSSL"},
			[]string{"trust store"}},
		{"HTTPS on port 80", "wsgi.localhost", "80", false, []string{"trust store"}, []string{"HTTP Redirect"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &wsgiServer{app: "/srv/app.wsgi", loadedAs: "script", mountPoint: "/", domain: tc.domain, port: tc.port,
				noTrust: tc.noTrust, processes: 1, threads: 5, home: "/srv", user: "www-data", queueTimeout: 45 * time.Second}
			banner := s.banner()
			for _, want := range tc.want {
				if !strings.Contains(banner, want) {
					t.Errorf("no %q in:\n%s", want, banner)
				}
			}
			for _, notWant := range tc.notWant {
				if strings.Contains(banner, notWant) {
					t.Errorf("%q in:\n%s", notWant, banner)
				}
			}
		})
	}
}

// TestBannerWorkers: the banner says where the workers run and as whom.
func TestBannerWorkers(t *testing.T) {
	s := &wsgiServer{app: "/srv/mysite/mysite/wsgi.py", loadedAs: "script", mountPoint: "/", port: "8000",
		processes: 1, threads: 5, home: "/srv/mysite", user: "www-data", group: "web", queueTimeout: 45 * time.Second}
	for _, want := range []string{"Working Directory  : /srv/mysite\n", "User               : www-data\n", "Group              : web\n"} {
		if banner := s.banner(); !strings.Contains(banner, want) {
			t.Errorf("no %q in:\n%s", want, banner)
		}
	}
}
