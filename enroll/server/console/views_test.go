package console

import (
	"testing"

	"github.com/totpbox/totpbox/enroll/store"
)

func TestDeviceClockState(t *testing.T) {
	tests := []struct {
		drift     int64
		outOfSync bool
		text      string
		title     string
	}{
		{0, false, "In sync", "Learned drift +0 s (+0 steps of 30 s)"},
		{-1, false, "Clock 30 s slow", "Learned drift -30 s (-1 steps of 30 s)"},
		{10, false, "Clock 5 min fast", "Learned drift +300 s (+10 steps of 30 s)"},
		{3, false, "Clock 90 s fast", "Learned drift +90 s (+3 steps of 30 s)"},
		{-260, false, "Clock 2 h 10 min slow", "Learned drift -7800 s (-260 steps of 30 s)"},
		{240, false, "Clock 2 h fast", "Learned drift +7200 s (+240 steps of 30 s)"},
		{0, true, "Out of sync", "Registered with a late code: a resync with two consecutive codes sets its clock. Learned drift +0 s (+0 steps of 30 s)"},
	}
	for _, tc := range tests {
		got := deviceClockState(store.Device{DriftSteps: tc.drift, OutOfSync: tc.outOfSync, PeriodSec: 30})
		if got.Text != tc.text || got.Title != tc.title || got.OutOfSync != tc.outOfSync {
			t.Errorf("deviceClockState(drift %d, out of sync %v) = %+v, want %q %q", tc.drift, tc.outOfSync, got, tc.text, tc.title)
		}
	}
}

func TestSentence(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "",
		"no appliance is waiting":       "No appliance is waiting.",
		"Already a sentence.":           "Already a sentence.",
		"élan":                          "Élan.",
		"type a name for the appliance": "Type a name for the appliance.",
		"is it? (see the log)":          "Is it? (see the log).",
	} {
		if got := sentence(in); got != want {
			t.Errorf("sentence(%q) = %q, want %q", in, got, want)
		}
	}
}
