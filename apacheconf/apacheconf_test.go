package apacheconf

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestWords(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{`WSGIScriptAlias /app /srv/app.wsgi`, []string{"WSGIScriptAlias", "/app", "/srv/app.wsgi"}},
		{"Alias\t/a   /b ", []string{"Alias", "/a", "/b"}},
		{`Alias "/my docs" '/srv/my docs'`, []string{"Alias", "/my docs", "/srv/my docs"}},
		{`AuthName "say \"hi\" \\ there"`, []string{"AuthName", `say "hi" \ there`}},
		{`AuthName 'it\'s'`, []string{"AuthName", "it's"}},
		{`Header set X a\b\\c`, []string{"Header", "set", "X", `a\b\c`}},
		{`Option a"b c"`, []string{"Option", `a"b`, `c"`}},
		{`AuthName ""`, []string{"AuthName", ""}},
		{`AuthName "unclosed word`, []string{"AuthName", "unclosed word"}},
	} {
		if got := Words(tc.line); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Words(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want []string
	}{
		{`site processes=2  threads=15`, []string{"site", "processes=2", "threads=15"}},
		{`site display-name='my site' home="/srv/my site" lang=C`, []string{"site", "display-name=my site", "home=/srv/my site", "lang=C"}},
		{`"my group" display-name=%{GROUP}`, []string{"my group", "display-name=%{GROUP}"}},
	} {
		if got := Options(tc.raw); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Options(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// write writes files (name to content) under dir.
func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		name = filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// outline is the tree as indented "file:line Name args" lines.
func outline(dir string, ds []*Directive, indent string) string {
	var b strings.Builder
	for _, d := range ds {
		rel, _ := filepath.Rel(dir, d.File)
		b.WriteString(indent + rel + ":" + strconv.Itoa(d.Line) + " " + d.Name)
		for _, a := range d.Args {
			b.WriteString(" [" + a + "]")
		}
		b.WriteString("\n")
		if d.IsSection() {
			b.WriteString(outline(dir, d.Block, indent+"  "))
		}
	}
	return b.String()
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"main.conf": `# a comment
ServerName example.com

WSGIDaemonProcess site \
    processes=2 \
	threads=4
    # an indented comment
<VirtualHost *:80>
	Include conf.d/*.conf
	IncludeOptional missing/*.conf
	IncludeOptional missing.conf
	<Location /x>
		Require all granted
	</Location>
</virtualhost>
Include sites
`,
		"conf.d/b.conf": "Alias /b /srv/b\n",
		"conf.d/a.conf": "Alias /a \"/srv/a dir\"\n",
		"conf.d/a.txt":  "Ignored by the glob\n",
		"sites/one":     "Define ONE\n",
		"sites/two":     "Define TWO\\\n",
	})
	ds, err := Parse(dir, filepath.Join(dir, "main.conf"))
	if err != nil {
		t.Fatal(err)
	}
	want := `main.conf:2 ServerName [example.com]
main.conf:4 WSGIDaemonProcess [site] [processes=2] [threads=4]
main.conf:8 VirtualHost [*:80]
  conf.d/a.conf:1 Alias [/a] [/srv/a dir]
  conf.d/b.conf:1 Alias [/b] [/srv/b]
  main.conf:12 Location [/x]
    main.conf:13 Require [all] [granted]
sites/one:1 Define [ONE]
sites/two:1 Define [TWO]
`
	if got := outline(dir, ds, ""); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if ds[1].Text != "WSGIDaemonProcess site     processes=2 \tthreads=4" || ds[1].Raw != "site     processes=2 \tthreads=4" {
		t.Errorf("the continued line's text is %q, its arguments %q", ds[1].Text, ds[1].Raw)
	}
}

func TestParseVariables(t *testing.T) {
	t.Setenv("MIGRATE_TEST_USER", "www-data")
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"main.conf": "Define SITE /srv/site\nDefine EMPTY\nUser ${MIGRATE_TEST_USER}\nWSGIScriptAlias / \"${SITE}/app.wsgi\"${EMPTY}\nGroup ${UNDEFINED}\n",
	})
	ds, err := Parse(dir, filepath.Join(dir, "main.conf"))
	if err != nil {
		t.Fatal(err)
	}
	want := `main.conf:1 Define [SITE] [/srv/site]
main.conf:2 Define [EMPTY]
main.conf:3 User [www-data]
main.conf:4 WSGIScriptAlias [/] [/srv/site/app.wsgi]
main.conf:5 Group [${UNDEFINED}]
`
	if got := outline(dir, ds, ""); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		conf, want string
	}{
		"include matches nothing": {"Include nothing/*.conf\n", "main.conf:1: Include nothing/*.conf: no file matches"},
		"include missing file":    {"Include missing.conf\n", "main.conf:1: Include: stat"},
		"unclosed section":        {"<VirtualHost *:80>\nServerName a\n", "main.conf:1: <VirtualHost *:80> is not closed"},
		"stray close":             {"</Location>\n", "main.conf:1: </Location> closes no open <Location>"},
		"mismatched close":        {"<Location />\n</Directory>\n", "main.conf:2: </Directory> closes no open <Directory>"},
		"include loop":            {"Include main.conf\n", "nested more than 128 deep"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, map[string]string{"main.conf": tc.conf})
			_, err := Parse(dir, filepath.Join(dir, "main.conf"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
