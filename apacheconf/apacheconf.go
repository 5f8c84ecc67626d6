// Package apacheconf reads Apache httpd configuration files into a tree of
// directives, as httpd itself reads them: lines joined at a trailing
// backslash, comment lines skipped, ${VAR} replaced by what Define or the
// environment defines, words split at spaces outside quotes, sections
// nested, and Include and IncludeOptional followed.
package apacheconf

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Directive is one directive, or one section with the directives inside it.
type Directive struct {
	// Name is as written, without a section's angle brackets:
	// "WSGIScriptAlias", "VirtualHost".
	Name string
	// Args are the words after the name; for a section, those of its
	// opening line without the closing >.
	Args []string
	// Block holds a section's directives; nil for a plain directive.
	Block []*Directive
	// File and Line are where the directive starts.
	File string
	Line int
	// Text is the directive's line as written (continuations joined), or a
	// section's opening line.
	Text string
	// Raw is Text after the name: what a module that reads its own
	// arguments (mod_wsgi's WSGIDaemonProcess) reads.
	Raw string
}

// IsSection says whether the directive is a section (<VirtualHost> ...).
func (d *Directive) IsSection() bool { return d.Block != nil }

// Parse reads the files in order, following Include and IncludeOptional,
// whose relative paths are relative to serverRoot (as Apache's ServerRoot).
func Parse(serverRoot string, files ...string) ([]*Directive, error) {
	p := &parser{root: serverRoot, defines: map[string]string{}}
	var top []*Directive
	for _, file := range files {
		ds, err := p.file(file, 0)
		if err != nil {
			return nil, err
		}
		top = append(top, ds...)
	}
	return top, nil
}

// maxIncludeDepth stops an Include loop, as httpd's own limit does.
const maxIncludeDepth = 128

type parser struct {
	root    string
	defines map[string]string // by Define
}

// variable is a ${NAME} reference.
var variable = regexp.MustCompile(`\$\{([A-Za-z0-9_:.-]+)\}`)

// expand replaces ${NAME} with what Define or else the environment defines,
// as httpd does; an undefined one stays as written.
func (p *parser) expand(text string) string {
	return variable.ReplaceAllStringFunc(text, func(ref string) string {
		name := ref[2 : len(ref)-1]
		if v, ok := p.defines[name]; ok {
			return v
		}
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		return ref
	})
}

// line is a logical line: its text and where it starts.
type line struct {
	text string
	file string
	num  int
}

// file reads one file's directives, its includes expanded in place.
func (p *parser) file(name string, depth int) ([]*Directive, error) {
	if depth > maxIncludeDepth {
		return nil, fmt.Errorf("%s: Include nested more than %d deep (a loop?)", name, maxIncludeDepth)
	}
	lines, err := readLines(name)
	if err != nil {
		return nil, err
	}
	ds, _, err := p.block(lines, nil, depth)
	return ds, err
}

// block reads directives until the end of lines or the line closing the
// section that open starts (nil: none), and returns the lines after it.
func (p *parser) block(lines []line, open *Directive, depth int) ([]*Directive, []line, error) {
	var ds []*Directive
	for len(lines) > 0 {
		l := lines[0]
		l.text = p.expand(l.text)
		lines = lines[1:]
		if strings.HasPrefix(l.text, "</") {
			name := strings.TrimSuffix(strings.TrimSpace(l.text[2:]), ">")
			if open == nil || !strings.EqualFold(name, open.Name) {
				return nil, nil, fmt.Errorf("%s:%d: %s closes no open <%s>", l.file, l.num, l.text, name)
			}
			return ds, lines, nil
		}
		if strings.HasPrefix(l.text, "<") {
			open := strings.TrimSpace(l.text[1:])
			if !strings.HasSuffix(open, ">") {
				return nil, nil, fmt.Errorf("%s:%d: %s: the section's line does not end with >", l.file, l.num, l.text)
			}
			words := Words(strings.TrimSuffix(open, ">"))
			if len(words) == 0 {
				return nil, nil, fmt.Errorf("%s:%d: %s: a section without a name", l.file, l.num, l.text)
			}
			d := &Directive{Name: words[0], Args: words[1:], File: l.file, Line: l.num, Text: l.text}
			var err error
			d.Block, lines, err = p.block(lines, d, depth)
			if err != nil {
				return nil, nil, err
			}
			if d.Block == nil {
				d.Block = []*Directive{}
			}
			ds = append(ds, d)
			continue
		}
		words := Words(l.text)
		raw := strings.TrimLeft(l.text[len(strings.Fields(l.text)[0]):], " \t")
		d := &Directive{Name: words[0], Args: words[1:], File: l.file, Line: l.num, Text: l.text, Raw: raw}
		if strings.EqualFold(d.Name, "Define") && len(d.Args) > 0 {
			p.defines[d.Args[0]] = strings.Join(d.Args[1:], " ")
		}
		if strings.EqualFold(d.Name, "Include") || strings.EqualFold(d.Name, "IncludeOptional") {
			included, err := p.include(d, depth)
			if err != nil {
				return nil, nil, err
			}
			ds = append(ds, included...)
			continue
		}
		ds = append(ds, d)
	}
	if open != nil {
		return nil, nil, fmt.Errorf("%s:%d: %s is not closed", open.File, open.Line, open.Text)
	}
	return ds, nil, nil
}

// include reads the files an Include or IncludeOptional names: a file, a
// directory (every file in it), or a wildcard pattern, in name order. As in
// httpd, a wildcard that matches nothing is an error only for Include, and a
// missing file is not one for IncludeOptional.
func (p *parser) include(d *Directive, depth int) ([]*Directive, error) {
	if len(d.Args) != 1 {
		return nil, fmt.Errorf("%s:%d: %s takes one file name or pattern", d.File, d.Line, d.Name)
	}
	optional := strings.EqualFold(d.Name, "IncludeOptional")
	pattern := d.Args[0]
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(p.root, pattern)
	}
	var names []string
	if strings.ContainsAny(pattern, "*?[") {
		var err error
		if names, err = filepath.Glob(pattern); err != nil {
			return nil, fmt.Errorf("%s:%d: %s %s: %v", d.File, d.Line, d.Name, d.Args[0], err)
		}
		if len(names) == 0 && !optional {
			return nil, fmt.Errorf("%s:%d: %s %s: no file matches (IncludeOptional allows that)", d.File, d.Line, d.Name, d.Args[0])
		}
	} else if info, err := os.Stat(pattern); err != nil {
		if optional && os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s:%d: %s: %v", d.File, d.Line, d.Name, err)
	} else if info.IsDir() {
		entries, err := os.ReadDir(pattern)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %v", d.File, d.Line, d.Name, err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				names = append(names, filepath.Join(pattern, e.Name()))
			}
		}
	} else {
		names = []string{pattern}
	}
	slices.Sort(names)
	var ds []*Directive
	for _, name := range names {
		included, err := p.file(name, depth+1)
		if err != nil {
			return nil, err
		}
		ds = append(ds, included...)
	}
	return ds, nil
}

// readLines reads a file's logical lines: a line ending in a backslash goes
// on with the next, blank lines and lines starting with # are dropped, and
// surrounding space is trimmed.
func readLines(name string) ([]line, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []line
	var cur strings.Builder
	start := 0
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for n := 1; s.Scan(); n++ {
		text := strings.TrimRight(s.Text(), " \t\r")
		if cur.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(text, `\`); ok {
			cur.WriteString(cont)
			continue
		}
		cur.WriteString(text)
		joined := strings.TrimSpace(cur.String())
		cur.Reset()
		if joined == "" || strings.HasPrefix(joined, "#") {
			continue
		}
		lines = append(lines, line{text: joined, file: name, num: start})
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" && !strings.HasPrefix(rest, "#") {
		lines = append(lines, line{text: rest, file: name, num: start})
	}
	return lines, nil
}

// Words splits a line into words as httpd's ap_getword_conf does: at runs
// of spaces, except inside a word that starts with a double or single quote,
// which runs to the matching quote. A backslash escapes a backslash, and
// inside quotes also the quote; any other backslash is kept.
func Words(s string) []string {
	var words []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return words
		}
		var quote byte
		if s[0] == '"' || s[0] == '\'' {
			quote = s[0]
			s = s[1:]
		}
		var w strings.Builder
		i := 0
		for ; i < len(s); i++ {
			c := s[i]
			if quote == 0 && (c == ' ' || c == '\t') || quote != 0 && c == quote {
				break
			}
			if c == '\\' && i+1 < len(s) && (s[i+1] == '\\' || quote != 0 && s[i+1] == quote) {
				i++
				c = s[i]
			}
			w.WriteByte(c)
		}
		if quote != 0 && i < len(s) {
			i++ // the closing quote
		}
		words = append(words, w.String())
		s = s[i:]
	}
}

// Options splits arguments into words as mod_wsgi reads the options of
// WSGIDaemonProcess and WSGIScriptAlias: like Words, but in name=value the
// value may be quoted on its own (display-name='my site'), and then the
// word is name=value without the quotes.
func Options(s string) []string {
	var words []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return words
		}
		name, rest := "", s
		if i := strings.IndexAny(s, "= \t"); i > 0 && s[i] == '=' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\'') {
			name, rest = s[:i+1], s[i+1:]
		}
		end := len(rest)
		if rest[0] == '"' || rest[0] == '\'' {
			if j := strings.IndexByte(rest[1:], rest[0]); j >= 0 {
				end = j + 2
			}
		} else if j := strings.IndexAny(rest, " \t"); j >= 0 {
			end = j
		}
		word := Words(rest[:end])
		words = append(words, name+strings.Join(word, ""))
		s = rest[end:]
	}
}
