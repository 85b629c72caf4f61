// Package report renders the harness's results as Markdown: a summary of
// every goal first, then one section per suite with its tables.
package report

import (
	"fmt"
	"strings"
)

// Goal is one goal of the issue, as measured.
type Goal struct {
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
		fmt.Fprintf(&b, "\n## %s\n\n", s.Title)
		for _, p := range s.Intro {
			fmt.Fprintf(&b, "%s\n\n", p)
		}
		for _, t := range s.Tables {
			if t.Title != "" {
				fmt.Fprintf(&b, "### %s\n\n", t.Title)
			}
			writeTable(&b, t.Header, t.Rows)
			b.WriteString("\n")
			for _, n := range t.Notes {
				fmt.Fprintf(&b, "%s\n\n", n)
			}
		}
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "%s\n\n", n)
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
