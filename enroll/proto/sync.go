package proto

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"
)

// ClockReport is the appliance's clock reading carried by each sync.
type ClockReport struct {
	// Time is the appliance's estimate of UTC when it sent the request.
	Time time.Time
	// Bound is the reading's error bound; UnknownBound when the clock has
	// none (it never synced).
	Bound time.Duration
	// State is the clock state's name ("SYNCED", "HOLDOVER", ...).
	State string
	// Frequency is the timebase's frequency error in ppm.
	Frequency float64
}

// UnknownBound is the Bound of a reading without an error bound: the
// appliance's clock never synced. It travels as the largest int64, as
// clock.Reading's unbounded bound does.
const UnknownBound = time.Duration(math.MaxInt64)

// BoundKnown reports whether the reading has an error bound.
func (c ClockReport) BoundKnown() bool { return c.Bound != UnknownBound }

// SyncQuery is the query of a sync request. It travels in the URL, which
// the signature covers.
type SyncQuery struct {
	// After is the last revision the appliance applied; 0 at first.
	After int64
	// Wait is how long the server may hold the request when there is
	// nothing new; it is capped at MaxWait, and 0 answers at once.
	Wait time.Duration
	// Version is the appliance's software version.
	Version string
	// Accounts is how many accounts the appliance holds.
	Accounts int
	// Clock is the appliance's clock reading; nil when it has none.
	Clock *ClockReport
	// Secrets is how the appliance keeps its secrets: SecretsTPM,
	// SecretsSoftware, or empty from an appliance that does not say.
	Secrets string
}

// The appliance's secrets modes, as SyncQuery.Secrets reports them.
const (
	// SecretsTPM: the vault key is sealed to a TPM, which computes the
	// codes of active SHA-1 and SHA-256 accounts.
	SecretsTPM = "tpm"
	// SecretsSoftware: the vault key is a file on the SD card; a copy of
	// the card copies every account.
	SecretsSoftware = "software"
)

// Encode returns q as URL query values.
func (q SyncQuery) Encode() url.Values {
	v := url.Values{}
	v.Set("after", strconv.FormatInt(q.After, 10))
	v.Set("wait", strconv.FormatInt(int64(q.Wait/time.Second), 10))
	if q.Version != "" {
		v.Set("version", q.Version)
	}
	v.Set("accounts", strconv.Itoa(q.Accounts))
	if c := q.Clock; c != nil {
		v.Set("clock_time", c.Time.UTC().Format(time.RFC3339Nano))
		v.Set("clock_bound", strconv.FormatInt(int64(c.Bound), 10))
		v.Set("clock_state", c.State)
		v.Set("clock_ppm", strconv.FormatFloat(c.Frequency, 'g', -1, 64))
	}
	if q.Secrets != "" {
		v.Set("secrets", q.Secrets)
	}
	return v
}

// ParseSyncQuery parses the query of a sync request, naming the first bad
// parameter.
func ParseSyncQuery(v url.Values) (SyncQuery, error) {
	var q SyncQuery
	var err error
	if s := v.Get("after"); s != "" {
		if q.After, err = strconv.ParseInt(s, 10, 64); err != nil || q.After < 0 {
			return q, errors.New("after must be a revision, 0 or more")
		}
	}
	if s := v.Get("wait"); s != "" {
		w, err := strconv.Atoi(s)
		if err != nil || w < 0 {
			return q, errors.New("wait must be whole seconds, 0 or more")
		}
		q.Wait = min(time.Duration(w)*time.Second, MaxWait)
	}
	q.Version = v.Get("version")
	if len(q.Version) > 64 {
		return q, errors.New("version is over 64 characters")
	}
	if s := v.Get("accounts"); s != "" {
		if q.Accounts, err = strconv.Atoi(s); err != nil || q.Accounts < 0 {
			return q, errors.New("accounts must be a count")
		}
	}
	if s := v.Get("clock_time"); s != "" {
		c := &ClockReport{}
		if c.Time, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return q, errors.New("clock_time must be an RFC 3339 time")
		}
		b, err := strconv.ParseInt(v.Get("clock_bound"), 10, 64)
		if err != nil || b < 0 {
			return q, errors.New("clock_bound must be nanoseconds, 0 or more")
		}
		c.Bound = time.Duration(b)
		c.State = v.Get("clock_state")
		if c.State == "" || len(c.State) > 16 {
			return q, errors.New("clock_state must be a state name")
		}
		if c.Frequency, err = strconv.ParseFloat(v.Get("clock_ppm"), 64); err != nil {
			return q, fmt.Errorf("clock_ppm must be a number")
		}
		q.Clock = c
	}
	switch q.Secrets = v.Get("secrets"); q.Secrets {
	case "", SecretsTPM, SecretsSoftware:
	default:
		return q, errors.New("secrets must be tpm or software")
	}
	return q, nil
}
