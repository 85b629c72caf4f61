package report

import (
	"math"
	"strings"
	"testing"
)

func TestMarkdown(t *testing.T) {
	d := &Doc{
		Title:    "Benchmarks",
		Preamble: []string{"One command."},
		Facts:    [][2]string{{"Date", "today"}},
		Commands: []string{"rsync -a --delete a/ b/"},
		Goals: []Goal{
			{Suite: "API", Goal: "10× moto", Measured: "12×", Status: Status(true)},
			{Suite: "API", Goal: "p99 | tenth", Measured: "0.2×", Status: Status(false), Note: "2× over"},
		},
		Sections: []Section{{Title: "API", Tables: []Table{{Title: "t", Header: []string{"a", "b"},
			Rows: [][]string{{"1"}, {"2", "3"}}}}}},
	}
	md := d.Markdown()
	for _, want := range []string{
		"# Benchmarks\n", "| API | 10× moto | 12× | met |  |\n", `p99 \| tenth`, "**MISSED**",
		"| 1 |  |\n", "rsync -a --delete a/ b/\n", "### t\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in:\n%s", want, md)
		}
	}
	if strings.Index(md, "Summary of goals") > strings.Index(md, "## API") {
		t.Error("summary must come first")
	}
}

func TestJSONNullsNaN(t *testing.T) {
	type s struct {
		A float64 `json:"a"`
		B float64 `json:"b,omitempty"`
		C []float64
		D map[string]float64 `json:"d"`
		e int
	}
	b, err := JSON(map[string]any{"x": &s{A: math.NaN(), C: []float64{1, math.Inf(1)}, D: map[string]float64{"k": 2}}})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(strings.Fields(string(b)), "")
	if got != `{"x":{"C":[1,null],"a":null,"d":{"k":2}}}` {
		t.Fatalf("got %s", got)
	}
}

// A suite's block replaces its previous block in place and leaves
// everything else (hand-written sections included) as it was; a suite
// without a block is appended.
func TestSpliceBlocks(t *testing.T) {
	d := &Doc{Title: "B", Facts: [][2]string{{"CPU", "EPYC"}},
		Goals: []Goal{{Section: 0, Suite: "5", Goal: "g0", Status: Met}, {Section: 1, Suite: "6", Goal: "other", Status: Missed}},
		Sections: []Section{
			{Suite: "xdeploy", Title: "5. Across", Tables: []Table{{Header: []string{"a"}, Rows: [][]string{{"new"}}}}},
			{Suite: "api", Title: "1. API"},
		}}
	full := d.Markdown()
	if !strings.Contains(full, "<!-- efsbench:xdeploy -->\n## 5. Across") || !strings.Contains(full, "<!-- /efsbench:api -->\n") {
		t.Fatalf("sections not marked:\n%s", full)
	}
	block := d.Block(0, "Run alone.")
	for _, want := range []string{"## 5. Across\n\nRun alone.\n", "| CPU | EPYC |", "| g0 |", "| new |"} {
		if !strings.Contains(block, want) {
			t.Errorf("block lacks %q:\n%s", want, block)
		}
	}
	if strings.Contains(block, "other") {
		t.Errorf("block has another section's goal:\n%s", block)
	}
	old := "# B\n\nintro\n\n<!-- efsbench:xdeploy -->\n## 5. Across\n\n| old |\n<!-- /efsbench:xdeploy -->\n\n## Hand-written\n\nkeep me\n"
	got := Splice(old, "xdeploy", block)
	if strings.Contains(got, "| old |") || !strings.Contains(got, "| new |") {
		t.Errorf("old block not replaced:\n%s", got)
	}
	if !strings.HasPrefix(got, "# B\n\nintro\n\n<!-- efsbench:xdeploy -->") || !strings.HasSuffix(got, "<!-- /efsbench:xdeploy -->\n\n## Hand-written\n\nkeep me\n") {
		t.Errorf("text around the block changed:\n%s", got)
	}
	if b := Blocks(got); len(b) != 1 || b["xdeploy"] != block {
		t.Errorf("Blocks = %q", b)
	}
	appended := Splice("# B\n\ntext", "xdeploy", block)
	if appended != "# B\n\ntext\n\n"+block {
		t.Errorf("appended:\n%s", appended)
	}
}
