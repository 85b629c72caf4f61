package stats

import (
	"math"
	"testing"
)

func TestPercentileNearestRank(t *testing.T) {
	xs := []float64{15, 20, 35, 40, 50}
	for _, c := range []struct{ p, want float64 }{
		{0, 15}, {5, 15}, {30, 20}, {40, 20}, {50, 35}, {100, 50}, {99, 50},
	} {
		if got := Percentile(xs, c.p); got != c.want {
			t.Errorf("Percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if xs[0] != 15 || xs[4] != 50 {
		t.Error("input modified")
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("empty input should give NaN")
	}
	// 1..100: p99 is 99, p50 is 50.
	var h []float64
	for i := 100; i >= 1; i-- {
		h = append(h, float64(i))
	}
	if Percentile(h, 99) != 99 || Percentile(h, 50) != 50 || Percentile(h, 100) != 100 {
		t.Error("wrong percentiles of 1..100")
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{3, 1, 2})
	if s != (Summary{N: 3, Median: 2, Min: 1, Max: 3}) {
		t.Errorf("odd: %+v", s)
	}
	s = Summarize([]float64{4, 1, math.NaN(), 2, 3})
	if s != (Summary{N: 4, Median: 2.5, Min: 1, Max: 4}) {
		t.Errorf("even with NaN: %+v", s)
	}
	if Summarize(nil).Valid() || Summarize(nil).Format(Num) != "n/a" {
		t.Error("empty summary")
	}
	if got := (Summary{N: 3, Median: 0.0021, Min: 0.002, Max: 0.0031}).Format(Seconds); got != "2.1 ms (2 ms–3.1 ms)" {
		t.Errorf("format: %q", got)
	}
	if got := (Summary{N: 1, Median: 2, Min: 2, Max: 2}).Format(Num); got != "2" {
		t.Errorf("single: %q", got)
	}
}

func TestFormatters(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Seconds(0.0000123), "12 µs"}, {Seconds(0.5), "500 ms"}, {Seconds(12.34), "12.3 s"},
		{Num(12345.6), "12346"}, {Num(999.6), "1000"}, {Num(99.96), "100"}, {Num(1.23456), "1.23"}, {MiB(3 << 20), "3.0 MiB"},
		{Times(Ratio(10, 4)), "2.5×"}, {Times(Ratio(1, 0)), "n/a"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
