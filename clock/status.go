package clock

import (
	"cmp"
	"math"
	"time"
)

// ServerStatus is what the clock knows of one server.
type ServerStatus struct {
	// Address is the server as configured.
	Address string `json:"address"`
	// Offset is the server's time minus the clock's, at its last sample,
	// in seconds (UTC minus the uncorrected clock before the first update).
	Offset float64 `json:"offset_s"`
	// Delay is the round trip of the last sample, in seconds.
	Delay float64 `json:"delay_s"`
	// Reach is the 8-poll reachability register, newest poll lowest bit.
	Reach uint8 `json:"reach"`
	// Selected reports whether the last selection used the server.
	Selected bool `json:"selected"`
	// Falseticker reports whether the last selection found it disagreeing
	// with the majority.
	Falseticker bool `json:"falseticker"`
	// SetAside reports whether the server is no longer polled (refused
	// service, unresolvable name); Error says why.
	SetAside bool `json:"set_aside"`
	// Error is the last problem with the server; empty while it answers.
	Error string `json:"error,omitempty"`
	// Failures counts polls that gave no sample (no reply, unusable or
	// refused replies, failed key exchanges).
	Failures int `json:"failures"`
	// NTS reports whether the server is an nts:// one; the fields below
	// are about NTS and zero otherwise.
	NTS bool `json:"nts"`
	// Authenticated reports whether the server's last reply passed NTS
	// authentication.
	Authenticated bool `json:"authenticated"`
	// Cookies is how many unused NTS cookies the clock holds for it.
	Cookies int `json:"cookies"`
	// SinceKE is the time since the last successful NTS key exchange in
	// seconds, -1 if none.
	SinceKE float64 `json:"since_ke_s"`
	// KEFailures counts failed key exchanges; AuthFailures counts replies
	// refused because they failed authentication (forged, changed on the
	// way, or answering another request); NAKs counts NTS-NAKs.
	KEFailures   int `json:"ke_failures"`
	AuthFailures int `json:"auth_failures"`
	NAKs         int `json:"naks"`
}

// Status is the clock's state for totpctl and the simulator.
type Status struct {
	State  State     `json:"state"`
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"`
	// Bound is the error bound in seconds, -1 when there is none.
	Bound float64 `json:"bound_s"`
	// Frequency is the oscillator's estimated frequency error in ppm
	// (positive runs fast) and Skew its uncertainty; FrequencyKnown is
	// false until measurements give an estimate.
	Frequency      float64 `json:"frequency_ppm"`
	Skew           float64 `json:"skew_ppm"`
	FrequencyKnown bool    `json:"frequency_known"`
	// PollInterval is the current polling interval in seconds.
	PollInterval float64 `json:"poll_interval_s"`
	// SinceUpdate is the time since the last update in seconds, -1 if none.
	SinceUpdate float64 `json:"since_update_s"`
	// Samples is how many measurements the frequency regression holds.
	Samples int            `json:"samples"`
	Servers []ServerStatus `json:"servers"`
}

func finite(v, otherwise float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return otherwise
	}
	return v
}

// Status reports the clock and every server.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	local := e.q.timebase.Local()
	rd := e.disc.Reading(local)
	f, skew, ok := e.disc.Frequency()
	st := Status{
		State:          rd.State,
		Reason:         rd.Reason,
		Time:           rd.Time,
		Bound:          -1,
		Frequency:      finite(f, 0),
		Skew:           finite(skew, -1),
		FrequencyKnown: ok,
		PollInterval:   e.poll.Seconds(),
		SinceUpdate:    -1,
		Samples:        e.disc.Samples(),
	}
	if rd.Bound != unbounded {
		st.Bound = rd.Bound.Seconds()
	}
	if e.disc.updates > 0 {
		st.SinceUpdate = (local - e.lastUpdate).Seconds()
	}
	for _, s := range e.servers {
		ss := ServerStatus{
			Address:  s.name,
			Reach:    s.reach,
			SetAside: s.setAside != "",
			Error:    cmp.Or(s.lastErr, s.setAside),
			Failures: s.failures,
			SinceKE:  -1,
		}
		if s.nts != nil {
			n := s.nts.Stats(local)
			ss.NTS, ss.Authenticated, ss.Cookies = true, n.Authenticated, n.Cookies
			ss.KEFailures, ss.AuthFailures, ss.NAKs = n.KEFailures, n.AuthFailures, n.NAKs
			if n.HaveKE {
				ss.SinceKE = n.SinceKE.Seconds()
			}
		}
		if s.have {
			ss.Offset = (s.last.Offset - e.disc.estimate(s.last.Local)).Seconds()
			ss.Delay = s.last.Delay.Seconds()
		}
		ss.Selected, ss.Falseticker = e.disc.ServerState(s.name)
		st.Servers = append(st.Servers, ss)
	}
	return st
}
