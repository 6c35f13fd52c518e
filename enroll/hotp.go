package enroll

import "crypto/subtle"

// VerifyHOTP reports whether code is the HOTP code (RFC 4226) of one of
// the counters from counter to counter+lookAhead and, when it is, the
// lowest such counter: the next counter is then one past it. Counters
// below counter are used and never match; candidates are compared in
// constant time.
func VerifyHOTP(k Key, code string, counter uint64, lookAhead int) (matched uint64, ok bool) {
	if len(code) != k.digits() {
		return 0, false
	}
	for c := counter; c <= counter+uint64(max(lookAhead, 0)); c++ {
		if subtle.ConstantTimeCompare([]byte(HOTP(k, c)), []byte(code)) == 1 {
			return c, true
		}
	}
	return 0, false
}

// ResyncHOTP looks for two consecutive HOTP codes, first then second,
// from counters counter to counter+window (RFC 4226 §7.4): a token pressed
// more often than the look-ahead window allows is brought back this way.
// It returns the counter of second.
func ResyncHOTP(k Key, first, second string, counter uint64, window int) (matched uint64, ok bool) {
	if len(first) != k.digits() || len(second) != k.digits() {
		return 0, false
	}
	for c := counter; c < counter+uint64(max(window, 0)); c++ {
		if subtle.ConstantTimeCompare([]byte(HOTP(k, c)), []byte(first)) == 1 &&
			subtle.ConstantTimeCompare([]byte(HOTP(k, c+1)), []byte(second)) == 1 {
			return c + 1, true
		}
	}
	return 0, false
}
