package enroll

import "testing"

// RFC 4226 Appendix D: the secret "12345678901234567890" and its codes
// for counters 0 to 9.
var rfc4226Codes = []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}

func TestVerifyHOTP(t *testing.T) {
	k := Key{Secret: []byte("12345678901234567890"), Algorithm: SHA1, Digits: 6, Period: DefaultPeriod}
	tests := []struct {
		code      string
		counter   uint64
		lookAhead int
		want      uint64
		ok        bool
	}{
		{rfc4226Codes[0], 0, 10, 0, true},
		{rfc4226Codes[9], 0, 10, 9, true},
		{rfc4226Codes[9], 0, 8, 0, false},  // beyond the look-ahead window
		{rfc4226Codes[3], 4, 10, 0, false}, // a used counter
		{rfc4226Codes[4], 4, 0, 4, true},
		{"12345", 0, 10, 0, false},
	}
	for _, tc := range tests {
		got, ok := VerifyHOTP(k, tc.code, tc.counter, tc.lookAhead)
		if got != tc.want || ok != tc.ok {
			t.Errorf("VerifyHOTP(%s, counter %d, look-ahead %d) = %d, %v, want %d, %v", tc.code, tc.counter, tc.lookAhead, got, ok, tc.want, tc.ok)
		}
	}
}

func TestResyncHOTP(t *testing.T) {
	k := Key{Secret: []byte("12345678901234567890"), Algorithm: SHA1, Digits: 6, Period: DefaultPeriod}
	tests := []struct {
		first, second string
		counter       uint64
		window        int
		want          uint64
		ok            bool
	}{
		{rfc4226Codes[7], rfc4226Codes[8], 0, 100, 8, true},
		{rfc4226Codes[8], rfc4226Codes[7], 0, 100, 0, false}, // not in order
		{rfc4226Codes[7], rfc4226Codes[9], 0, 100, 0, false}, // not consecutive
		{rfc4226Codes[7], rfc4226Codes[8], 0, 7, 0, false},   // beyond the window
		{rfc4226Codes[7], rfc4226Codes[8], 8, 100, 0, false}, // used
	}
	for _, tc := range tests {
		got, ok := ResyncHOTP(k, tc.first, tc.second, tc.counter, tc.window)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ResyncHOTP(%s, %s, counter %d, window %d) = %d, %v, want %d, %v", tc.first, tc.second, tc.counter, tc.window, got, ok, tc.want, tc.ok)
		}
	}
}
