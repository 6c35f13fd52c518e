package core

import (
	"fmt"
	"slices"
	"strings"
)

// Role is what a person or an API token may do. Each core operation
// names the roles it needs (see Op); a refused one is a 403 Failure.
type Role string

// The roles. A user signed in without one (no admin flag, no role from
// the identity provider) reaches only the portal: their own devices.
const (
	// RoleAdmin may do everything.
	RoleAdmin Role = "admin"
	// RoleHelpdesk sees users and their MFA devices and works on the
	// devices: sends them to an appliance, unlocks, resyncs, deletes,
	// starts a registration. It changes no settings, tokens, webhooks,
	// appliance pairings or users.
	RoleHelpdesk Role = "helpdesk"
	// RoleAuditor reads everything, the audit log and charts included,
	// and changes nothing.
	RoleAuditor Role = "auditor"
	// RoleVerify checks codes (POST /api/v1/verify) and nothing else: the
	// role of an application's API token.
	RoleVerify Role = "verify"
)

// Roles lists every role, in the order they are documented.
var Roles = []Role{RoleAdmin, RoleHelpdesk, RoleAuditor, RoleVerify}

// ParseRole returns the role named s, or a one-line error naming it and
// the roles there are.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if slices.Contains(Roles, r) {
		return r, nil
	}
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return "", fmt.Errorf("unknown role %q: want one of %s", s, strings.Join(names, ", "))
}
