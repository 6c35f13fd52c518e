package daemon

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: without GOGC the appliance's collector runs at
// IdleGCPercent; GOGC in the environment wins.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tests := []struct {
		name  string
		gogc  string // "" unset
		start int    // the percentage in force before (GOGC's, when set)
		want  int
	}{
		{"default", "", 100, IdleGCPercent},
		{"GOGC set", "150", 150, 150},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOGC", tt.gogc)
			debug.SetGCPercent(tt.start)
			if got := TuneGC(); got != tt.want {
				t.Errorf("TuneGC() = %d, want %d", got, tt.want)
			}
			if got := debug.SetGCPercent(100); got != tt.want {
				t.Errorf("GC percent after TuneGC = %d, want %d", got, tt.want)
			}
		})
	}
}
