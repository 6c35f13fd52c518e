package proto

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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
	// Authenticated reports whether the clock's last update came only from
	// NTS-authenticated time servers. It travels only when true; an older
	// appliance says nothing, which reads as false.
	Authenticated bool
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
		if c.Authenticated {
			v.Set("clock_authenticated", "1")
		}
	}
	if q.Secrets != "" {
		v.Set("secrets", q.Secrets)
	}
	return v
}

// Bounds on what a sync reports: ParseSyncQuery refuses a value outside
// them, so nothing an appliance says is stored that the console or the
// API could not show.
const (
	// MaxVersion is the longest software version, in bytes.
	MaxVersion = 64
	// MaxAccounts is the largest account count.
	MaxAccounts = 1_000_000
	// MaxFrequencyPPM bounds the timebase's frequency error either side
	// of zero (the clock discipline itself stays within 500 ppm).
	MaxFrequencyPPM = 1000
)

// ClockStates are the clock states a sync may report (clock.State's
// names).
var ClockStates = []string{"UNSYNCED", "SYNCED", "HOLDOVER", "UNTRUSTED"}

// The clock times a sync may report: an appliance without a real-time
// clock may start at 1970 before it syncs; 2200 keeps every offset within
// a time.Duration.
var (
	minClockTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxClockTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// FrequencyFits reports whether ppm is a frequency error a sync may
// report: a finite number within ±MaxFrequencyPPM.
func FrequencyFits(ppm float64) bool {
	return !math.IsNaN(ppm) && math.Abs(ppm) <= MaxFrequencyPPM
}

// CheckVersion checks a software version an appliance reports, at
// pairing and at each sync: at most MaxVersion bytes of valid UTF-8, with
// no control character (newlines, terminal escapes) and no invisible
// format character (bidi overrides, zero-width characters), which would
// make it read as something else in the console and the audit log.
func CheckVersion(v string) error {
	if len(v) > MaxVersion {
		return fmt.Errorf("version is over %d bytes", MaxVersion)
	}
	if strings.IndexFunc(v, unfit) >= 0 {
		return errors.New("version holds a control, format or invalid character")
	}
	return nil
}

// unfit reports whether r may not be shown as reported: invalid UTF-8, a
// control or an invisible format character.
func unfit(r rune) bool {
	return r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// Printable returns s with every character CheckVersion refuses replaced
// by U+FFFD, for showing a value stored before it was checked.
func Printable(s string) string {
	if strings.IndexFunc(s, unfit) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unfit(r) {
			return utf8.RuneError
		}
		return r
	}, s)
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
	if err := CheckVersion(q.Version); err != nil {
		return q, err
	}
	if s := v.Get("accounts"); s != "" {
		if q.Accounts, err = strconv.Atoi(s); err != nil || q.Accounts < 0 || q.Accounts > MaxAccounts {
			return q, fmt.Errorf("accounts must be a count from 0 to %d", MaxAccounts)
		}
	}
	if s := v.Get("clock_time"); s != "" {
		c := &ClockReport{}
		if c.Time, err = time.Parse(time.RFC3339Nano, s); err != nil || c.Time.Before(minClockTime) || !c.Time.Before(maxClockTime) {
			return q, errors.New("clock_time must be an RFC 3339 time from 1970 to 2199")
		}
		b, err := strconv.ParseInt(v.Get("clock_bound"), 10, 64)
		if err != nil || b < 0 {
			return q, errors.New("clock_bound must be nanoseconds, 0 or more")
		}
		c.Bound = time.Duration(b)
		c.State = v.Get("clock_state")
		if !slices.Contains(ClockStates, c.State) {
			return q, fmt.Errorf("clock_state must be one of %s", strings.Join(ClockStates, ", "))
		}
		c.Frequency, err = strconv.ParseFloat(v.Get("clock_ppm"), 64)
		if err != nil || !FrequencyFits(c.Frequency) {
			return q, fmt.Errorf("clock_ppm must be a number from -%d to %d", MaxFrequencyPPM, MaxFrequencyPPM)
		}
		switch v.Get("clock_authenticated") {
		case "":
		case "1":
			c.Authenticated = true
		default:
			return q, errors.New("clock_authenticated must be 1 or absent")
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
