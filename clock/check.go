package clock

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/totpbox/totpbox/internal/wallclock"
)

// Check runs only the clock against cfg's servers for d and returns its
// status at the end: what an operator runs before going live. Nothing is
// written (no drift file is read or kept, the RTC is neither read nor set).
func Check(ctx context.Context, cfg Config, env Env, d time.Duration) (Status, error) {
	cfg.DriftFile, cfg.RTC, env.RTC = "", "", nil
	svc, err := New(cfg, env)
	if err != nil {
		return Status{}, err
	}
	if err := wallclock.Within(ctx, d, svc.Run); err != nil {
		return Status{}, err
	}
	return svc.Status(), nil
}

// CheckServer is one server in a CheckReport.
type CheckServer struct {
	Address       string  `json:"address"`
	Authenticated bool    `json:"authenticated"`
	Reach         uint8   `json:"reach"`
	Offset        float64 `json:"offset_s"`
	Delay         float64 `json:"delay_s"`
	Failures      int     `json:"failures"`
}

// CheckReport is what `totpd clock check --json` prints: the state in
// lower case, the reading's time (RFC 3339 with nanoseconds) and bound in
// seconds (-1 when there is none), and each server.
type CheckReport struct {
	State   string        `json:"state"`
	Time    string        `json:"time"`
	Bound   float64       `json:"bound_s"`
	Servers []CheckServer `json:"servers"`
}

// Report turns a status into a CheckReport.
func (st Status) Report() CheckReport {
	r := CheckReport{
		State:   strings.ToLower(st.State.String()),
		Time:    st.Time.UTC().Format(time.RFC3339Nano),
		Bound:   st.Bound,
		Servers: []CheckServer{},
	}
	for _, s := range st.Servers {
		r.Servers = append(r.Servers, CheckServer{
			Address:       s.Address,
			Authenticated: s.Authenticated,
			Reach:         s.Reach,
			Offset:        s.Offset,
			Delay:         s.Delay,
			Failures:      s.Failures,
		})
	}
	return r
}

// WriteSources prints the status as `chronyc sources` does: the reading
// with its bound, then one line per server: its mark (* selected, x
// falseticker, - set aside, ? not answering, + answering), whether NTS
// authenticated its last reply (yes, no; - for plain NTP), the reach register in octal, the last offset and
// delay, failed polls, and the last problem.
func WriteSources(w io.Writer, st Status) error {
	bound := "none"
	if st.Bound >= 0 {
		bound = fmt.Sprintf("±%.6f s", st.Bound)
	}
	fmt.Fprintf(w, "State %s", st.State)
	if st.Reason != "" {
		fmt.Fprintf(w, " (%s)", st.Reason)
	}
	fmt.Fprintf(w, "\nTime  %s %s\n\n", st.Time.UTC().Format(time.RFC3339Nano), bound)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  Server\tAuth\tReach\tOffset\tDelay\tFailures\tProblem")
	for _, s := range st.Servers {
		mark := "+"
		switch {
		case s.Selected:
			mark = "*"
		case s.Falseticker:
			mark = "x"
		case s.SetAside:
			mark = "-"
		case s.Reach == 0:
			mark = "?"
		}
		auth := "-" // plain NTP
		if s.NTS {
			auth = map[bool]string{true: "yes", false: "no"}[s.Authenticated]
		}
		offset, delay := "-", "-"
		if s.Reach != 0 {
			offset, delay = fmt.Sprintf("%+.6f s", s.Offset), fmt.Sprintf("%.6f s", s.Delay)
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%03o\t%s\t%s\t%d\t%s\n", mark, s.Address, auth, s.Reach, offset, delay, s.Failures, s.Error)
	}
	return tw.Flush()
}
