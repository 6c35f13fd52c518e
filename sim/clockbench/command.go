package clockbench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/spf13/cobra"
)

// Command returns the `clockbench` subcommand of totpsim.
func Command() *cobra.Command {
	var (
		opts   Config
		ppm    float64
		wander float64
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "clockbench",
		Short: "Run the disciplined clock against simulated NTP servers in virtual time",
		Long: "clockbench runs the disciplined clock in virtual time against a simulated\n" +
			"oscillator and simulated NTP servers, then the servers go away for 24 h.\n" +
			"It prints time to SYNCED, error once synced, bound violations and holdover\n" +
			"error, next to a naive SNTP client and a free-running clock.\n\n" +
			"Scenarios: " + strings.Join(Scenarios(), ", ") + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("ppm") {
				opts.PPM = &ppm
			}
			if cmd.Flags().Changed("wander") {
				opts.Wander = &wander
			}
			res, err := Run(opts)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			return WriteText(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Scenario, "scenario", "lan", "scenario: "+strings.Join(Scenarios(), ", "))
	f.Uint64Var(&opts.Seed, "seed", 1, "random seed")
	f.Float64Var(&ppm, "ppm", 0, "oscillator frequency offset in ppm (default: the scenario's)")
	f.Float64Var(&wander, "wander", 0, "frequency random walk per second, e.g. 1e-9 (default: the scenario's)")
	f.Float64Var(&opts.Hours, "hours", 0, "hours synchronised before the 24 h holdover (default: the scenario's)")
	f.BoolVar(&opts.NTS, "nts", false, "run the disciplined clock over NTS: the simulated servers authenticate their replies (the baselines stay on plain NTP)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// WriteText prints a result as a table: the disciplined clock and the
// baselines side by side.
func WriteText(w io.Writer, r Result) error {
	cols := []struct {
		name string
		f    Figures
	}{{"disciplined", r.Figures}, {"naive SNTP", r.Baselines["naive_sntp"]}, {"free-running", r.Baselines["free_running"]}}
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s, seed %d: %s\n", r.Scenario, r.Seed, scenarios[r.Scenario].about)
	fmt.Fprintf(&b, "oscillator %g ppm, wander %g; %g h synchronised, then 24 h without servers\n", r.PPM, r.Wander, r.Hours)
	if r.NTS {
		fmt.Fprintf(&b, "the disciplined clock over NTS (replies authenticated)\n")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "%-22s", "")
	for _, c := range cols {
		fmt.Fprintf(&b, "%15s", c.name)
	}
	b.WriteString("\n")
	row := func(label string, v func(Figures) string) {
		fmt.Fprintf(&b, "%-22s", label)
		for _, c := range cols {
			fmt.Fprintf(&b, "%15s", v(c.f))
		}
		b.WriteString("\n")
	}
	row("time to SYNCED", func(f Figures) string {
		if f.TimeToSynced < 0 {
			return "never"
		}
		return fmt.Sprintf("%.1f s", f.TimeToSynced)
	})
	row("max |error|", func(f Figures) string { return human(f.MaxAbsError) })
	row("RMS error", func(f Figures) string { return human(f.RMSError) })
	row("median bound", func(f Figures) string { return human(f.MedianBound) })
	row("max |error| after 5m", func(f Figures) string { return human(f.SettledMaxAbsError) })
	row("RMS error after 5m", func(f Figures) string { return human(f.SettledRMSError) })
	row("median bound / RMS", func(f Figures) string {
		if f.RMSError == 0 {
			return "-"
		}
		return fmt.Sprintf("%.3g", f.MedianBound/f.RMSError)
	})
	row("bound violations", func(f Figures) string { return fmt.Sprint(f.BoundViolations) })
	for _, c := range checkpoints {
		row("holdover "+c.name, func(f Figures) string { return human(f.HoldoverError[c.name]) })
	}
	t := r.MedianBoundTerms
	fmt.Fprintf(&b, "\nthe disciplined clock's bound, median of each part: path %s, estimate %s, frequency %s, drift %s, slew %s\n",
		human(t.Path), human(t.Estimate), human(t.Frequency), human(t.Drift), human(t.Slew))
	if len(r.Falsetickers) > 0 {
		fmt.Fprintf(&b, "\nfalsetickers: %s\n", strings.Join(r.Falsetickers, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// human formats seconds with a unit that suits the size.
func human(s float64) string {
	a := math.Abs(s)
	switch {
	case a >= 1:
		return fmt.Sprintf("%.3f s", s)
	case a >= 1e-3:
		return fmt.Sprintf("%.3f ms", s*1e3)
	default:
		return fmt.Sprintf("%.1f µs", s*1e6)
	}
}
