package clockbench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestCommandJSON(t *testing.T) {
	cmd := Command()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--scenario", "lan", "--seed", "2", "--hours", "0.5", "--ppm", "20", "--wander", "0", "--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{"scenario", "seed", "time_to_synced_s", "max_abs_error_s", "rms_error_s", "bound_violations", "holdover_error_s", "baselines",
		"median_bound_s", "settled_max_abs_error_s", "settled_rms_error_s", "updates_per_hour", "bound_rms_ratio", "median_bound_terms",
		"nts", "counted_readings", "authenticated_readings"} {
		if _, ok := got[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, out.String())
		}
	}
	if len(got) != 17 {
		t.Errorf("JSON has %d fields, want 17: %s", len(got), out.String())
	}
	// On a LAN the path's part is half of some 200 µs, and the drift
	// allowance grows between updates.
	terms := got["median_bound_terms"].(map[string]any)
	if p := terms["path_s"].(float64); p < 50e-6 || p > 200e-6 {
		t.Errorf("median path term %g s, want about 100 µs", p)
	}
	if d := terms["drift_s"].(float64); d <= 0 {
		t.Errorf("median drift term %g s, want > 0", d)
	}
	if r, want := got["bound_rms_ratio"].(float64), got["median_bound_s"].(float64)/got["rms_error_s"].(float64); r != want {
		t.Errorf("bound_rms_ratio %g, want median bound / RMS = %g", r, want)
	}
	bl := got["baselines"].(map[string]any)
	for _, k := range []string{"naive_sntp", "free_running"} {
		b, ok := bl[k].(map[string]any)
		if !ok {
			t.Fatalf("baselines lacks %q", k)
		}
		h := b["holdover_error_s"].(map[string]any)
		for _, c := range []string{"1h", "6h", "24h"} {
			if _, ok := h[c]; !ok {
				t.Errorf("baseline %s holdover lacks %q", k, c)
			}
		}
	}
	// A 20 ppm crystal left free-running for 24 h is off by about 1.7 s.
	free := bl["free_running"].(map[string]any)["holdover_error_s"].(map[string]any)["24h"].(float64)
	if free < 1.5 || free > 2 {
		t.Errorf("free-running error after 24 h = %.3f s, want about 1.73 s", free)
	}
}

// TestCommandNTS: --nts runs the disciplined clock over NTS, and every
// reading counted is authenticated.
func TestCommandNTS(t *testing.T) {
	cmd := Command()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--scenario", "lan", "--hours", "0.5", "--nts", "--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	var got struct {
		NTS           bool `json:"nts"`
		Counted       int  `json:"counted_readings"`
		Authenticated int  `json:"authenticated_readings"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !got.NTS || got.Counted == 0 || got.Authenticated != got.Counted {
		t.Errorf("--nts: %+v; want NTS with every counted reading authenticated", got)
	}
}

func TestCommandText(t *testing.T) {
	cmd := Command()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--scenario", "falseticker", "--hours", "0.5"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	for _, want := range []string{"time to SYNCED", "bound violations", "holdover 24h", "naive SNTP", "free-running", "falsetickers: ntp2.lan:123, ntp4.lan:123",
		"median bound / RMS", "the disciplined clock's bound, median of each part: path "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCommandBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "moon"}, `unknown scenario "moon"`},
		{[]string{"--ppm", "900"}, "--ppm 900"},
		{[]string{"--wander", "-1"}, "--wander -1"},
		{[]string{"--hours", "0.01"}, "--hours 0.01"},
	}
	for _, tt := range tests {
		cmd := Command()
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs(tt.args)
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("clockbench %v: error %v, want one containing %q", tt.args, err, tt.want)
		}
	}
}
