package caddywsgi

import "testing"

func TestSuggest(t *testing.T) {
	candidates := []string{"processes", "threads", "python", "python_home", "max_queue"}
	for word, want := range map[string]string{
		"proceses":   "processes", // a letter missing
		"procesess":  "processes", // two swapped
		"thread":     "threads",
		"pyhton":     "python",
		"python-hom": "python_home",
		"queue":      "", // too far from max_queue
		"xyz":        "",
	} {
		if got := suggest(word, candidates); got != want {
			t.Errorf("suggest(%q) = %q, want %q", word, got, want)
		}
	}
}
