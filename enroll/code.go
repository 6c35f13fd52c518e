package enroll

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"hash"
	"slices"
	"time"
)

var pow10 = [...]uint32{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

func (a Algorithm) hash() func() hash.Hash {
	switch a {
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	}
	return sha1.New
}

// HOTP returns the RFC 4226 one-time password for counter, with the key's
// algorithm and digits.
func HOTP(k Key, counter uint64) string {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], counter)
	m := hmac.New(k.Algorithm.hash(), k.Secret)
	m.Write(buf[:])
	return Truncate(m.Sum(nil), k.Digits)
}

// Truncate turns an HOTP HMAC into its code: RFC 4226's dynamic
// truncation to digits (8, else 6) decimal digits. It lets an HMAC
// computed elsewhere (inside a TPM) give the same code as HOTP.
func Truncate(sum []byte, digits int) string {
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	if digits != 8 {
		digits = 6
	}
	v := bin % pow10[digits]
	out := make([]byte, digits)
	for i := digits - 1; i >= 0; i-- {
		out[i] = byte('0' + v%10)
		v /= 10
	}
	return string(out)
}

// Step returns the RFC 6238 time step that t falls in.
func Step(k Key, t time.Time) int64 {
	p := int64(k.period() / time.Second)
	u := t.Unix()
	if u < 0 {
		return (u - p + 1) / p
	}
	return u / p
}

// StepStart returns the first instant of time step step.
func StepStart(k Key, step int64) time.Time {
	return time.Unix(step*int64(k.period()/time.Second), 0)
}

func (k Key) period() time.Duration {
	if k.Period <= 0 {
		return DefaultPeriod
	}
	return k.Period
}

// CodeAt returns the code of time step step.
func CodeAt(k Key, step int64) string { return HOTP(k, uint64(step)) }

// Code returns the TOTP code for key at time t.
func Code(k Key, t time.Time) string { return CodeAt(k, Step(k, t)) }

// VerifyOptions says where a verifier looks for a code.
type VerifyOptions struct {
	// Window is how many steps either side of the expected step are
	// accepted; 0 accepts only the expected step.
	Window int
	// Drift is the device's learned offset in steps: the expected step is
	// the step of the verifier's time plus Drift.
	Drift int64
	// LastUsed is the highest step already accepted; steps at or below it
	// are refused (RFC 6238 §5.2). Zero or negative means none.
	LastUsed int64
	// UsedAhead are further steps already accepted and refused, each
	// one (steps a device whose clock runs fast used ahead of the
	// verifier's clock); the steps between them are not refused.
	UsedAhead []int64
	// AlsoZero also searches Window steps either side of the verifier's
	// own step, after the search around Drift: a device whose clock was
	// set right again is not refused because of a drift learned before.
	AlsoZero bool
}

// used reports whether step is refused as already accepted.
func (o VerifyOptions) used(step int64) bool {
	return step <= o.LastUsed || slices.Contains(o.UsedAhead, step)
}

// Verify reports whether code is valid for key at time t and, when it is,
// the matched time step. The search runs outward from the expected step so
// the nearest match wins; candidates are compared in constant time.
func Verify(k Key, code string, t time.Time, o VerifyOptions) (step int64, ok bool) {
	if len(code) != k.digits() {
		return 0, false
	}
	match := func(s int64) bool {
		return !o.used(s) && s >= 0 &&
			subtle.ConstantTimeCompare([]byte(CodeAt(k, s)), []byte(code)) == 1
	}
	now := Step(k, t)
	centers := []int64{now + o.Drift}
	if o.AlsoZero && o.Drift != 0 {
		centers = append(centers, now)
	}
	for _, center := range centers {
		for d := int64(0); d <= int64(o.Window); d++ {
			if match(center + d) {
				return center + d, true
			}
			if d > 0 && match(center-d) {
				return center - d, true
			}
		}
	}
	return 0, false
}

// VerifyLate reports whether code is the code of a step from 1 to late
// steps before t's step less window (a code typed too late for Verify's
// window), not before step notBefore; the nearest match wins. It returns
// the matched step.
func VerifyLate(k Key, code string, t time.Time, window, late int, notBefore int64) (step int64, ok bool) {
	if len(code) != k.digits() {
		return 0, false
	}
	edge := Step(k, t) - int64(window)
	for s := edge - 1; s >= edge-int64(late) && s >= notBefore && s >= 0; s-- {
		if subtle.ConstantTimeCompare([]byte(CodeAt(k, s)), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// Resync looks for two consecutive codes, first then second, within window
// steps either side of t's step plus drift, the way an out-of-sync device is
// brought back. It returns the step of second; steps at or below lastUsed
// are refused.
func Resync(k Key, first, second string, t time.Time, drift int64, window int, lastUsed int64) (step int64, ok bool) {
	if len(first) != k.digits() || len(second) != k.digits() {
		return 0, false
	}
	center := Step(k, t) + drift
	try := func(s int64) bool {
		return s > lastUsed && s-1 >= 0 &&
			subtle.ConstantTimeCompare([]byte(CodeAt(k, s-1)), []byte(first)) == 1 &&
			subtle.ConstantTimeCompare([]byte(CodeAt(k, s)), []byte(second)) == 1
	}
	for d := int64(0); d <= int64(window); d++ {
		if try(center + d) {
			return center + d, true
		}
		if d > 0 && try(center-d) {
			return center - d, true
		}
	}
	return 0, false
}

func (k Key) digits() int {
	if k.Digits == 8 {
		return 8
	}
	return 6
}
