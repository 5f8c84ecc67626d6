package caddywsgi

import (
	"regexp"
	"testing"
)

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

// TestFileNamePattern: a FilesMatch expression, matched by Apache against
// a file's name, becomes a pattern for the URL paths that end in such a
// name.
func TestFileNamePattern(t *testing.T) {
	for re, paths := range map[string]map[string]bool{
		`^\.ht`:              {"/.htaccess": true, "/static/.htpasswd": true, "/a.htm": false, "/.ht/x": false},
		`\.(bak|orig)$`:      {"/x.bak": true, "/dir/y.orig": true, "/x.bak/z": false, "/x.bakery": false},
		`^secret\.txt$`:      {"/secret.txt": true, "/a/secret.txt": true, "/mysecret.txt": false},
		`~$`:                 {"/notes~": true, "/notes": false},
		`^price\$list\.csv$`: {"/price$list.csv": true},
	} {
		pattern, ok := fileNamePattern(re)
		if !ok {
			t.Errorf("%s: refused", re)
			continue
		}
		for path, want := range paths {
			if got := regexp.MustCompile(pattern).MatchString(path); got != want {
				t.Errorf("%s as %s: %s matches %v, want %v", re, pattern, path, got, want)
			}
		}
	}
	for _, re := range []string{"^dir/file$", "(unclosed"} {
		if pattern, ok := fileNamePattern(re); ok {
			t.Errorf("%s: %s, want a refusal", re, pattern)
		}
	}
}
