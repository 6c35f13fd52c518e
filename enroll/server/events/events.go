// Package events is what leaves the server when something happens: the
// audit rows that syslog (enroll/server/events/syslog) sends to a SIEM,
// and the webhook events (enroll/server/events/webhook) the outbox
// delivers. It maps audit actions to webhook event types and says how an
// event's data looks; the adapters over it speak the protocols.
package events

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// Sink receives audit events as they are recorded. Publish must never
// block: it is called on the verify and sign-in paths.
type Sink interface {
	Publish(e store.AuditEvent)
}

// Sinks publishes to each of its sinks.
type Sinks []Sink

// Publish hands e to every sink.
func (s Sinks) Publish(e store.AuditEvent) {
	for _, k := range s {
		k.Publish(e)
	}
}

// Webhook event types.
const (
	DeviceRegistered        = "device.registered"
	DeviceDeleted           = "device.deleted"
	DeviceLocked            = "device.locked"
	DeviceUnlocked          = "device.unlocked"
	RegistrationExpired     = "registration.expired"
	UserDisabled            = "user.disabled"
	AppliancePaired         = "appliance.paired"
	ApplianceUnpaired       = "appliance.unpaired"
	ApplianceOffline        = "appliance.offline"
	ApplianceOnline         = "appliance.online"
	ApplianceClockUntrusted = "appliance.clock_untrusted"
	ApplianceClockTrusted   = "appliance.clock_trusted"
	ApplianceReplaced       = "appliance.replaced"
	AdminChanged            = "admin.changed"
)

// NoticeWebhookEvent is the fleet notice that a webhook event was written
// to the outbox, so the deliverers wake at once instead of at their next
// poll.
const NoticeWebhookEvent = "webhook-event"

// byAction maps audit actions to the webhook event they raise.
var byAction = map[string]string{
	"device.register":           DeviceRegistered,
	"device.delete":             DeviceDeleted,
	"device.lock":               DeviceLocked,
	"device.unlock":             DeviceUnlocked,
	"device.expire":             RegistrationExpired,
	"user.disable":              UserDisabled,
	"appliance.pair":            AppliancePaired,
	"appliance.unpair":          ApplianceUnpaired,
	"appliance.offline":         ApplianceOffline,
	"appliance.online":          ApplianceOnline,
	"appliance.clock_untrusted": ApplianceClockUntrusted,
	"appliance.clock_trusted":   ApplianceClockTrusted,
	"appliance.replace":         ApplianceReplaced,
	"settings.save":             AdminChanged,
	"token.create":              AdminChanged,
	"token.revoke":              AdminChanged,
	"user.create":               AdminChanged, // only for an admin: see WebhookType
	"webhook.create":            AdminChanged,
	"webhook.update":            AdminChanged,
	"webhook.delete":            AdminChanged,
}

// Types lists the webhook event types an endpoint may subscribe to.
var Types = []string{
	DeviceRegistered, DeviceDeleted, DeviceLocked, DeviceUnlocked,
	RegistrationExpired, UserDisabled,
	AppliancePaired, ApplianceUnpaired, ApplianceOffline, ApplianceOnline,
	ApplianceClockUntrusted, ApplianceClockTrusted, ApplianceReplaced, AdminChanged,
}

// IsType reports whether t is a webhook event type.
func IsType(t string) bool {
	for _, k := range Types {
		if k == t {
			return true
		}
	}
	return false
}

// WebhookType is the webhook event an audit event raises, if any. A user
// created as an admin is an admin change; other users are not.
func WebhookType(e store.AuditEvent) (string, bool) {
	if e.Action == "user.create" && e.Detail != "admin" {
		return "", false
	}
	t, ok := byAction[e.Action]
	return t, ok
}

// Result is "failure" for an audit event that records something refused
// or failing (a wrong code, a rejected request, a lock), else "success".
func Result(action string) string {
	switch {
	case strings.HasSuffix(action, ".fail"), strings.Contains(action, "reject"),
		strings.Contains(action, "replay"), strings.Contains(action, "limited"),
		action == "device.lock":
		return "failure"
	}
	return "success"
}

// Data is a webhook event's data: the audit row, with the user, MFA
// device and appliance its target names split out.
type Data struct {
	Action    string `json:"audit_type"`
	Actor     string `json:"actor"`
	Target    string `json:"target,omitempty"`
	User      string `json:"user,omitempty"`
	DeviceID  int64  `json:"device_id,omitempty"`
	Appliance string `json:"appliance,omitempty"`
	Detail    string `json:"detail,omitempty"`
	Address   string `json:"address,omitempty"`
}

// DataOf returns the data of the webhook event of e.
func DataOf(e store.AuditEvent) Data {
	d := Data{Action: e.Action, Actor: e.Actor, Target: e.Target, Detail: e.Detail, Address: e.IP}
	for _, f := range strings.Fields(e.Target) {
		k, v, _ := strings.Cut(f, ":")
		switch k {
		case "user":
			d.User = v
		case "device":
			d.DeviceID, _ = strconv.ParseInt(v, 10, 64)
		case "appliance":
			d.Appliance = v
		}
	}
	return d
}

// WebhookEvent is the outbox row of e, when e raises a webhook event.
func WebhookEvent(e store.AuditEvent) (store.WebhookEvent, bool) {
	t, ok := WebhookType(e)
	if !ok {
		return store.WebhookEvent{}, false
	}
	b, _ := json.Marshal(DataOf(e))
	return store.WebhookEvent{ID: NewID(), Type: t, Time: e.Time, Data: string(b)}, true
}

// NewID returns a new, random event id ("msg_" and 26 base32 letters):
// the webhook-id of every delivery of the event.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return "msg_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Body is a webhook delivery's body: the event's type, its time and its
// data.
type Body struct {
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}
