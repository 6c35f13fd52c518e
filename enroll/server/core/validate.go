package core

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CleanUsername lowercases and checks a username: 1 to 64 characters of
// letters a-z, digits and ._@- starting with a letter or digit.
func CleanUsername(s string) (string, error) {
	u := strings.ToLower(strings.TrimSpace(s))
	switch {
	case u == "":
		return "", fmt.Errorf("username is empty")
	case len(u) > 64:
		return "", fmt.Errorf("username is longer than 64 characters")
	case !isAlnum(rune(u[0])):
		return "", fmt.Errorf("username must start with a letter or digit")
	}
	for _, r := range u {
		if !isAlnum(r) && !strings.ContainsRune("._@-", r) {
			return "", fmt.Errorf("username may hold only letters a-z, digits and . _ @ -, not %s", showRune(r))
		}
	}
	return u, nil
}

func isAlnum(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' }

// cleanDeviceName trims and checks a friendly name: 1 to 64 characters of
// letters, digits, spaces and +=,.@-_ (the rule of IAM), and apostrophes
// (' and the ’ phones type) for names such as “Bob's iPhone”.
func cleanDeviceName(s string) (string, error) {
	n := strings.TrimSpace(s)
	switch {
	case n == "":
		return "", fmt.Errorf("friendly name is empty")
	case !utf8.ValidString(n):
		return "", fmt.Errorf("friendly name is not valid UTF-8")
	case utf8.RuneCountInString(n) > 64:
		return "", fmt.Errorf("friendly name is longer than 64 characters")
	}
	for _, r := range n {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != ' ' && !strings.ContainsRune("+=,.@-_'’", r) {
			return "", fmt.Errorf("friendly name may hold only letters, digits, spaces and + = , . @ - _ ', not %s", showRune(r))
		}
	}
	if strings.ContainsRune(formulaPrefixes, rune(n[0])) {
		return "", fmt.Errorf("friendly name may not start with = + - or @ (a spreadsheet would read it as a formula), not %s", showRune(rune(n[0])))
	}
	return n, nil
}

// formulaPrefixes are the characters that make a spreadsheet read a cell
// as a formula when it starts with one (CSV injection).
const formulaPrefixes = "=+-@"

// invisible returns the first control or invisible format character of s
// (bidi overrides and isolates such as U+202E and U+2066, zero-width
// characters such as U+200B), which make a name read as another, and
// whether there is one.
func invisible(s string) (rune, bool) {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return r, true
		}
	}
	return 0, false
}

// showRune shows r for a message: “/” for a visible character, U+200B for
// an invisible one, with no escapes to read through.
func showRune(r rune) string {
	if unicode.IsGraphic(r) && !unicode.IsSpace(r) {
		return "“" + string(r) + "”"
	}
	return fmt.Sprintf("U+%04X", r)
}

// cleanDisplayName trims a display name and checks its length.
func cleanDisplayName(s string) (string, error) {
	n := strings.TrimSpace(s)
	if utf8.RuneCountInString(n) > 128 {
		return "", fmt.Errorf("display name is longer than 128 characters")
	}
	for _, r := range n {
		switch {
		case unicode.IsControl(r):
			return "", fmt.Errorf("display name holds a control character")
		case unicode.Is(unicode.Cf, r):
			// Bidi overrides and isolates (U+202E, U+2066), joiners
			// (U+200D) and other invisible format characters make a name
			// read as another.
			return "", fmt.Errorf("display name holds an invisible format character U+%04X", r)
		}
	}
	return n, nil
}

// cleanEmail checks an optional email address.
func cleanEmail(s string) (string, error) {
	e := strings.TrimSpace(s)
	if e == "" {
		return "", nil
	}
	if r, ok := invisible(e); ok {
		return "", fmt.Errorf("email holds an invisible or control character U+%04X", r)
	}
	// Letters of other scripts that look like Latin ones (Cyrillic а,
	// U+0430) would let one address pass for another.
	if i := strings.IndexFunc(e, func(r rune) bool { return r > unicode.MaxASCII }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(e[i:])
		return "", fmt.Errorf("email may hold only ASCII characters, not %s (U+%04X), which may pass for another", showRune(r), r)
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || len(e) > 254 {
		return "", fmt.Errorf("email %q is not a valid address", e)
	}
	return e, nil
}

// checkPassword checks a new password's length; it never echoes it.
func checkPassword(p string) error {
	switch n := utf8.RuneCountInString(p); {
	case n < 10:
		return fmt.Errorf("password is shorter than 10 characters")
	case len(p) > 1024:
		return fmt.Errorf("password is longer than 1024 bytes")
	}
	return nil
}

// CleanCode strips spaces from a code and checks it is 6 or 8 digits.
func CleanCode(s string) (string, error) {
	c := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, s)
	if c == "" {
		return "", fmt.Errorf("code is empty")
	}
	for _, r := range c {
		if r < '0' || r > '9' {
			return "", fmt.Errorf("code must hold only digits")
		}
	}
	if len(c) != 6 && len(c) != 8 {
		return "", fmt.Errorf("code must be 6 or 8 digits, not %d", len(c))
	}
	return c, nil
}
