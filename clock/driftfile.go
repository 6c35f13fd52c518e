package clock

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Drift is what the drift file keeps across restarts: the frequency
// estimate, to warm-start the discipline, and the last good time, a lower
// bound for UTC after boot.
type Drift struct {
	// Frequency and Skew in ppm, as in Status.
	Frequency float64 `json:"frequency_ppm"`
	Skew      float64 `json:"skew_ppm"`
	// LastGood is a time UTC was certainly past when the file was written:
	// a trusted reading minus its bound.
	LastGood time.Time `json:"last_good_time"`
}

// Validate reports whether the values could have been written by a clock.
func (d Drift) Validate() error {
	switch {
	case math.IsNaN(d.Frequency) || math.Abs(d.Frequency) > maxFrequency*1e6:
		return fmt.Errorf("frequency %g ppm is outside ±500", d.Frequency)
	case math.IsNaN(d.Skew) || d.Skew < 0 || d.Skew > maxFrequency*1e6:
		return fmt.Errorf("skew %g ppm is outside 0..500", d.Skew)
	case !d.LastGood.IsZero() && (d.LastGood.Before(earliestPlausible) || d.LastGood.After(latestPlausible)):
		return fmt.Errorf("last good time %s is implausible", d.LastGood.Format(time.RFC3339))
	}
	return nil
}

// LoadDrift reads a drift file. A missing file gives the zero Drift and
// fs.ErrNotExist; a corrupt one an error naming what is wrong.
func LoadDrift(path string) (Drift, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Drift{}, err
	}
	var d Drift
	if err := json.Unmarshal(b, &d); err != nil {
		return Drift{}, fmt.Errorf("drift file %s: %v", path, err)
	}
	if err := d.Validate(); err != nil {
		return Drift{}, fmt.Errorf("drift file %s: %v", path, err)
	}
	return d, nil
}

// Storable returns d as the drift file may keep it: what LoadDrift would
// refuse is left out rather than written. A skew beyond 500 ppm (a slow or
// busy machine measuring through a noisy path) says no more than "unknown
// within ±500 ppm", so it is kept as 500; a frequency beyond ±500 ppm or
// not a number is not kept at all; an implausible last good time is
// dropped.
func (d Drift) Storable() Drift {
	limit := maxFrequency * 1e6
	if math.IsNaN(d.Frequency) || math.IsInf(d.Frequency, 0) || math.Abs(d.Frequency) > limit {
		d.Frequency, d.Skew = 0, limit
	}
	if math.IsNaN(d.Skew) || d.Skew < 0 || d.Skew > limit {
		d.Skew = limit
	}
	if !d.LastGood.IsZero() && (d.LastGood.Before(earliestPlausible) || d.LastGood.After(latestPlausible)) {
		d.LastGood = time.Time{}
	}
	return d
}

// SaveDrift writes a drift file atomically: a temporary file, fsynced,
// renamed over the old one. It writes d.Storable(), so what it writes
// LoadDrift reads.
func SaveDrift(path string, d Drift) error {
	b, err := json.MarshalIndent(d.Storable(), "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("drift file: %w", err)
	}
	return nil
}

// loadDriftOrSetAside loads the drift file. A file that does not parse is
// renamed to path+".bad" so it is reported once, not on every start, and
// gives the zero Drift. A file that parses but holds an implausible value
// is set aside too, but what of it is plausible (the learned frequency, the
// last good time) is still returned beside the error, so one bad field does
// not cost the rest.
func loadDriftOrSetAside(path string) (Drift, error) {
	d, err := LoadDrift(path)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return d, err
	}
	var kept Drift
	if b, rerr := os.ReadFile(path); rerr == nil && json.Unmarshal(b, &kept) == nil {
		kept = kept.Storable()
	} else {
		kept = Drift{}
	}
	if rerr := os.Rename(path, path+".bad"); rerr != nil {
		return kept, fmt.Errorf("%v (and cannot set it aside: %v)", err, rerr)
	}
	return kept, fmt.Errorf("%v; set aside as %s.bad", err, filepath.Base(path))
}
