package clock

import (
	"math"
	"testing"
)

func TestIntersect(t *testing.T) {
	tests := []struct {
		name      string
		iv        []interval
		count     int
		survivors []bool
	}{
		{"all agree", []interval{{0, 1}, {0.5, 1}, {-0.2, 0.5}}, 3, []bool{true, true, true}},
		{"one far off", []interval{{0, 1}, {0.5, 1}, {3600, 0.001}}, 2, []bool{true, true, false}},
		{"touching", []interval{{0, 1}, {2, 1}}, 2, []bool{true, true}},
		{"two cliques", []interval{{0, 0.1}, {0.05, 0.1}, {5, 0.1}, {5.05, 0.1}, {5.1, 0.1}}, 3, []bool{false, false, true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel := intersect(tt.iv)
			if sel.count != tt.count {
				t.Errorf("count = %d, want %d", sel.count, tt.count)
			}
			for i, s := range tt.survivors {
				if sel.survivor[i] != s {
					t.Errorf("survivor[%d] = %v, want %v", i, sel.survivor[i], s)
				}
			}
		})
	}
}

func TestAgreed(t *testing.T) {
	tests := []struct {
		count, usable, configured int
		want                      bool
	}{
		{1, 1, 1, true},
		{1, 1, 4, false}, // two needed when two or more configured
		{2, 2, 4, true},
		{2, 4, 4, false}, // not a majority
		{3, 5, 5, true},
		{1, 2, 2, false},
	}
	for _, tt := range tests {
		if got := agreed(tt.count, tt.usable, tt.configured); got != tt.want {
			t.Errorf("agreed(%d, %d, %d) = %v, want %v", tt.count, tt.usable, tt.configured, got, tt.want)
		}
	}
}

func TestRegress(t *testing.T) {
	var pts []point
	for i := range 20 {
		x := float64(i) * 16
		noise := float64((i*7)%5-2) * 1e-5
		pts = append(pts, point{x: x, y: 0.5 - 50e-6*x + noise, w: 1 / (50e-6 * 50e-6)})
	}
	f := regress(pts)
	if math.Abs(f.slope+50e-6) > 1e-6 {
		t.Errorf("slope = %g, want -5e-5", f.slope)
	}
	if s := f.skew(); s <= 0 || s > 5e-6 {
		t.Errorf("skew = %g, want small and positive", s)
	}
	if math.Abs(f.at(0)-0.5) > 5e-5 {
		t.Errorf("at(0) = %g, want 0.5", f.at(0))
	}
}

func TestRunsTestDropsOldPoints(t *testing.T) {
	// The frequency changed halfway: the old half no longer fits a line.
	var pts []point
	for i := range 40 {
		x := float64(i) * 16
		y := 10e-6 * x
		if i >= 20 {
			y = 10e-6*320 - 30e-6*(x-320)
		}
		y += float64(i%2) * 1e-6
		pts = append(pts, point{x: x, y: y, w: 1})
	}
	start := bestStart(pts)
	if start < 15 {
		t.Fatalf("bestStart = %d, want the old half dropped", start)
	}
	if f := regress(pts[start:]); math.Abs(f.slope+30e-6) > 3e-6 {
		t.Errorf("slope after dropping = %g, want about -3e-5", f.slope)
	}
}
