package core

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
)

// Op is what a core operation does, as far as who may do it goes: each
// operation names the Op it needs, and Allow refuses an actor whose role
// is not among the Op's roles with a 403 naming the roles needed.
type Op struct {
	// What says what the operation does, to finish "... needs the admin
	// role".
	What string
	// Roles may do it.
	Roles []Role
}

// The operations. Admin may do each; the others as listed.
var (
	// OpReadUsers: see users and their MFA devices.
	OpReadUsers = Op{"seeing users and their MFA devices", []Role{RoleAdmin, RoleHelpdesk, RoleAuditor}}
	// OpReadAppliances: see the appliances (a site-limited actor sees
	// only their sites').
	OpReadAppliances = Op{"seeing appliances", []Role{RoleAdmin, RoleHelpdesk, RoleAuditor}}
	// OpReadHardwareTokens: see the imported hardware tokens and whom
	// they are assigned to.
	OpReadHardwareTokens = Op{"seeing hardware tokens", []Role{RoleAdmin, RoleHelpdesk, RoleAuditor}}
	// OpImportHardwareTokens: import hardware tokens' seeds.
	OpImportHardwareTokens = Op{"importing hardware tokens", []Role{RoleAdmin}}
	// OpReadAudit: read the audit log and the charts.
	OpReadAudit = Op{"reading the audit log", []Role{RoleAdmin, RoleAuditor}}
	// OpReadSettings: see the settings.
	OpReadSettings = Op{"seeing the settings", []Role{RoleAdmin, RoleAuditor}}
	// OpReadWebhooks: see the webhook endpoints and their deliveries.
	OpReadWebhooks = Op{"seeing webhooks", []Role{RoleAdmin, RoleAuditor}}
	// OpManageDevices: work on another user's MFA devices: start and
	// confirm a registration, send it to an appliance, rename, resync,
	// unlock, delete.
	OpManageDevices = Op{"working on a user's MFA devices", []Role{RoleAdmin, RoleHelpdesk}}
	// OpManageUsers: create users, disable and enable them, set their
	// passwords and admin flag.
	OpManageUsers = Op{"changing users", []Role{RoleAdmin}}
	// OpSettings: change the settings.
	OpSettings = Op{"changing the settings", []Role{RoleAdmin}}
	// OpAppliances: pair, rename, unpair and forget appliances, and set
	// their site.
	OpAppliances = Op{"pairing, renaming or unpairing appliances", []Role{RoleAdmin}}
	// OpWebhooks: create, change and delete webhook endpoints and
	// redeliver events.
	OpWebhooks = Op{"changing webhooks", []Role{RoleAdmin}}
	// OpTokens: create and revoke API tokens and change their roles.
	OpTokens = Op{"changing API tokens", []Role{RoleAdmin}}
	// OpVerify: check a user's code (POST /api/v1/verify, RADIUS).
	OpVerify = Op{"verifying codes", []Role{RoleAdmin, RoleVerify}}
)

// Allow returns nil when a may do op, else a 403 Failure naming the
// roles op needs and the role a has.
func Allow(a Actor, op Op) error {
	if slices.Contains(op.Roles, a.Role) {
		return nil
	}
	names := make([]string, len(op.Roles))
	for i, r := range op.Roles {
		names[i] = string(r)
	}
	need := strings.Join(names, " or ")
	has := "you have no role"
	if a.Role != "" {
		has = fmt.Sprintf("you have the %s role", a.Role)
	}
	return Fail(http.StatusForbidden, "%s needs the %s role; %s", op.What, need, has)
}

// AllowDevices returns nil when a may work on u's MFA devices: u
// themselves (the portal, whose own rules the console applies), an admin,
// or the help desk for a user who is not an admin: an admin's MFA device
// is a way into the admin's account, so only admins work on them.
func AllowDevices(a Actor, u store.User) error {
	if a.Name == u.Username && a.Name != "" {
		return nil
	}
	if err := Allow(a, OpManageDevices); err != nil {
		return err
	}
	if u.Admin && a.Role != RoleAdmin {
		return Fail(http.StatusForbidden, "working on an admin's MFA devices needs the admin role; you have the %s role", a.Role)
	}
	return nil
}

// allowSend returns nil when a may send u's registration to appliance
// app: work on u's devices and use app's site.
func (s *Core) allowSend(a Actor, u store.User, app appliance.Info) error {
	if err := AllowDevices(a, u); err != nil {
		return err
	}
	if a.Name == u.Username && a.Role != RoleAdmin && a.Role != RoleHelpdesk {
		return Fail(http.StatusForbidden, "sending a registration to an appliance needs the admin or helpdesk role")
	}
	return AllowSite(a, app.Site)
}

// AllowSite returns nil when a may see and send to an appliance of site:
// an actor without sites reaches every appliance, one with sites only
// theirs.
func AllowSite(a Actor, site string) error {
	if len(a.Sites) == 0 || slices.Contains(a.Sites, site) {
		return nil
	}
	if site == "" {
		return Fail(http.StatusForbidden, "this appliance belongs to no site; you may use only the appliances of %s", strings.Join(a.Sites, ", "))
	}
	return Fail(http.StatusForbidden, "this appliance belongs to site %s; you may use only the appliances of %s", site, strings.Join(a.Sites, ", "))
}
