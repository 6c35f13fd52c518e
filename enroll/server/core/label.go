package core

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultLabelTemplate is the account part of every otpauth label unless
// configured otherwise: "totpbox:alice (Kiosk token)", so that two MFA
// devices of one user look different in an authenticator app.
const DefaultLabelTemplate = "{user} ({device})"

// MaxLabelTemplate is the longest label template, in characters.
const MaxLabelTemplate = 64

// CheckLabelTemplate reports what is wrong with a label template: it must
// name the device with {device} (else two devices of a user share a
// label), may name the user with {user}, holds no other {…}, no colon
// (it separates the issuer in an otpauth label) and no control character.
func CheckLabelTemplate(tmpl string) error {
	switch {
	case strings.TrimSpace(tmpl) == "":
		return fmt.Errorf("label template is empty; use for example %q", DefaultLabelTemplate)
	case !utf8.ValidString(tmpl):
		return fmt.Errorf("label template is not valid UTF-8")
	case utf8.RuneCountInString(tmpl) > MaxLabelTemplate:
		return fmt.Errorf("label template is over %d characters", MaxLabelTemplate)
	case !strings.Contains(tmpl, "{device}"):
		return fmt.Errorf("label template %q lacks {device}: two MFA devices of one user would look the same in an app", tmpl)
	case strings.Contains(tmpl, ":"):
		return fmt.Errorf("label template %q contains a colon, which separates the issuer in an otpauth label", tmpl)
	case strings.IndexFunc(tmpl, unicode.IsControl) >= 0:
		return fmt.Errorf("label template contains a control character")
	}
	rest := strings.NewReplacer("{user}", "", "{device}", "").Replace(tmpl)
	if strings.ContainsAny(rest, "{}") {
		return fmt.Errorf("label template %q has a placeholder other than {user} and {device}", tmpl)
	}
	return nil
}

// accountLabel is the account part of d's otpauth label for user.
func (s *Core) accountLabel(user, device string) string {
	tmpl := s.cfg.LabelTemplate
	if tmpl == "" {
		tmpl = DefaultLabelTemplate
	}
	return strings.NewReplacer("{user}", user, "{device}", device).Replace(tmpl)
}
