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
