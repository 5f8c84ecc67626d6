package caddywsgi

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
)

// After changing a daemon setting, rewrite the README's table with
//
//	go test ./caddywsgi -run TestREADMESettingsTable -update-readme
var updateREADME = flag.Bool("update-readme", false, "rewrite README.md's table of daemon settings from the settings")

// TestREADMESettingsTable: the README's table of daemon settings, under
// "### `wsgi_daemon` (global option)", is the one settingsTable makes.
func TestREADMESettingsTable(t *testing.T) {
	const file = "../README.md"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	section := slices.Index(lines, "### `wsgi_daemon` (global option)")
	if section < 0 {
		t.Fatalf("%s has no wsgi_daemon section", file)
	}
	start := section + slices.IndexFunc(lines[section:], func(l string) bool { return strings.HasPrefix(l, "| setting |") })
	if start < section {
		t.Fatalf("%s: no settings table in the wsgi_daemon section", file)
	}
	end := start + slices.IndexFunc(lines[start:], func(l string) bool { return !strings.HasPrefix(l, "|") })
	want := settingsTable()
	if slices.Equal(lines[start:end], want) {
		return
	}
	if *updateREADME {
		lines = slices.Concat(lines[:start], want, lines[end:])
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	var diff strings.Builder
	for _, l := range lines[start:end] {
		if !slices.Contains(want, l) {
			diff.WriteString("- " + l + "\n")
		}
	}
	for _, l := range want {
		if !slices.Contains(lines[start:end], l) {
			diff.WriteString("+ " + l + "\n")
		}
	}
	t.Errorf("%s:%d: the settings table differs from the settings (rewrite it with -update-readme):\n%s", file, start+1, diff.String())
}

// settingsTable is the README's table of daemon settings, a line a setting.
func settingsTable() []string {
	table := []string{"| setting | meaning | default |", "|---|---|---|"}
	for _, s := range daemonSettings {
		row := "| `" + s.name + "` | " + s.meaning + " |"
		if s.def != "" {
			row += " " + s.def
		}
		table = append(table, row+" |")
	}
	return table
}
