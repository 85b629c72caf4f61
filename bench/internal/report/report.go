// Package report renders the harness's results as Markdown: a summary of
// every goal first, then one section per suite with its tables.
package report

import (
	"fmt"
	"strings"
)

// Goal is one goal of the issue, as measured.
type Goal struct {
	Section  int    `json:"-"` // index of its section in Doc.Sections
	Suite    string `json:"suite"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Status   string `json:"status"` // Met, Missed or "not measured"
	Note     string `json:"note,omitempty"`
}

// Goal statuses.
const (
	Met         = "met"
	Missed      = "MISSED"
	NotMeasured = "not measured"
)

// Status returns Met or Missed.
func Status(ok bool) string {
	if ok {
		return Met
	}
	return Missed
}

// Table is a titled table with notes under it.
type Table struct {
	Title  string     `json:"title"`
	Header []string   `json:"header"`
	Rows   [][]string `json:"rows"`
	Notes  []string   `json:"notes,omitempty"`
}

// Section is one suite's results.
type Section struct {
	// Suite names the suite (efsbench --suite NAME); a named section is
	// written between markers, so that a later run of that suite alone
	// can replace it in place (Splice).
	Suite  string   `json:"suite,omitempty"`
	Title  string   `json:"title"`
	Intro  []string `json:"intro,omitempty"`
	Tables []Table  `json:"tables"`
	Notes  []string `json:"notes,omitempty"`
}

// Doc is the whole of BENCHMARKS.md.
type Doc struct {
	Title    string      `json:"title"`
	Preamble []string    `json:"preamble"`
	Facts    [][2]string `json:"facts"` // date, machine, versions
	Commands []string    `json:"commands"`
	Goals    []Goal      `json:"goals"`
	Sections []Section   `json:"sections"`
	Notes    []string    `json:"notes,omitempty"`
}

// Markdown renders the document.
func (d *Doc) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", d.Title)
	for _, p := range d.Preamble {
		fmt.Fprintf(&b, "%s\n\n", p)
	}
	b.WriteString("## Summary of goals\n\n")
	rows := make([][]string, 0, len(d.Goals))
	for _, g := range d.Goals {
		st := g.Status
		if st == Missed {
			st = "**" + st + "**"
		}
		rows = append(rows, []string{g.Suite, g.Goal, g.Measured, st, g.Note})
	}
	writeTable(&b, []string{"Suite", "Goal", "Measured", "Status", "Note"}, rows)
	b.WriteString("\n## Run\n\n")
	writeTable(&b, []string{"Fact", "Value"}, pairs(d.Facts))
	b.WriteString("\nCommands run by the harness (paths as on this machine):\n\n```\n")
	for _, c := range d.Commands {
		fmt.Fprintf(&b, "%s\n", c)
	}
	b.WriteString("```\n")
	for _, s := range d.Sections {
		b.WriteString("\n")
		if s.Suite != "" {
			fmt.Fprintf(&b, "%s\n", beginMarker(s.Suite))
		}
		writeSection(&b, s, nil)
		if s.Suite != "" {
			fmt.Fprintf(&b, "%s\n", endMarker(s.Suite))
		}
	}
	if len(d.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range d.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// writeSection renders a section; extra paragraphs (if any) come right
// after its heading.
func writeSection(b *strings.Builder, s Section, extra func(*strings.Builder)) {
	fmt.Fprintf(b, "## %s\n\n", s.Title)
	if extra != nil {
		extra(b)
	}
	for _, p := range s.Intro {
		fmt.Fprintf(b, "%s\n\n", p)
	}
	for _, t := range s.Tables {
		if t.Title != "" {
			fmt.Fprintf(b, "### %s\n\n", t.Title)
		}
		writeTable(b, t.Header, t.Rows)
		b.WriteString("\n")
		for _, n := range t.Notes {
			fmt.Fprintf(b, "%s\n\n", n)
		}
	}
	for _, n := range s.Notes {
		fmt.Fprintf(b, "%s\n\n", n)
	}
}

func beginMarker(suite string) string { return "<!-- efsbench:" + suite + " -->" }
func endMarker(suite string) string   { return "<!-- /efsbench:" + suite + " -->" }

// Block renders section i alone, for a run of some suites only: between
// its suite's markers, the section with, under its heading, how it was
// run (what), the run's facts (the machine, versions), the section's goals
// and the run's notes, so that it stands on its own inside a
// BENCHMARKS.md whose summary it is not part of.
func (d *Doc) Block(i int, what string) string {
	s := d.Sections[i]
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", beginMarker(s.Suite))
	writeSection(&b, s, func(b *strings.Builder) {
		fmt.Fprintf(b, "%s\n\n", what)
		writeTable(b, []string{"Fact", "Value"}, pairs(d.Facts))
		b.WriteString("\n")
		var rows [][]string
		for _, g := range d.Goals {
			if g.Section != i {
				continue
			}
			st := g.Status
			if st == Missed {
				st = "**" + st + "**"
			}
			rows = append(rows, []string{g.Goal, g.Measured, st, g.Note})
		}
		if len(rows) > 0 {
			b.WriteString("Goals of this suite:\n\n")
			writeTable(b, []string{"Goal", "Measured", "Status", "Note"}, rows)
			b.WriteString("\n")
		}
		for _, n := range d.Notes {
			fmt.Fprintf(b, "Note: %s\n\n", n)
		}
	})
	fmt.Fprintf(&b, "%s\n", endMarker(s.Suite))
	return b.String()
}

// Splice puts block, a suite's block as Block renders it, into doc (a
// BENCHMARKS.md): in place of the same suite's block if doc has one, else
// at the end.
func Splice(doc, suite, block string) string {
	if i, j, ok := findBlock(doc, suite); ok {
		return doc[:i] + block + doc[j:]
	}
	if doc != "" && !strings.HasSuffix(doc, "\n\n") {
		doc = strings.TrimRight(doc, "\n") + "\n\n"
	}
	return doc + block
}

// Blocks returns the marked blocks of doc, by suite.
func Blocks(doc string) map[string]string {
	out := map[string]string{}
	rest := doc
	for {
		k := strings.Index(rest, "<!-- efsbench:")
		if k < 0 {
			return out
		}
		name, _, ok := strings.Cut(rest[k+len("<!-- efsbench:"):], " -->")
		if !ok {
			return out
		}
		i, j, ok := findBlock(rest, name)
		if !ok {
			return out
		}
		out[name] = rest[i:j]
		rest = rest[j:]
	}
}

// findBlock locates suite's block in doc: from its begin marker to just
// after its end marker's line.
func findBlock(doc, suite string) (int, int, bool) {
	i := strings.Index(doc, beginMarker(suite)+"\n")
	if i < 0 {
		return 0, 0, false
	}
	end := endMarker(suite) + "\n"
	j := strings.Index(doc[i:], end)
	if j < 0 {
		return 0, 0, false
	}
	return i, i + j + len(end), true
}

func pairs(p [][2]string) [][]string {
	out := make([][]string, len(p))
	for i, kv := range p {
		out[i] = []string{kv[0], kv[1]}
	}
	return out
}

func writeTable(b *strings.Builder, header []string, rows [][]string) {
	b.WriteString("| " + strings.Join(escape(header), " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(header)) + "\n")
	for _, r := range rows {
		cells := make([]string, len(header))
		copy(cells, escape(r))
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
}

func escape(cells []string) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = strings.ReplaceAll(strings.ReplaceAll(c, "|", `\|`), "\n", " ")
	}
	return out
}
