package uplink

import (
	"fmt"
	"time"
)

// Link is the state of the appliance's link with the server.
type Link int

// The link states.
const (
	// LinkNone: not paired (or standalone).
	LinkNone Link = iota
	// LinkUp: the last request reached the server.
	LinkUp
	// LinkDown: the server is unreachable.
	LinkDown
)

// String returns "none", "up" or "down".
func (l Link) String() string {
	switch l {
	case LinkNone:
		return "none"
	case LinkUp:
		return "up"
	case LinkDown:
		return "down"
	}
	return fmt.Sprintf("Link(%d)", int(l))
}

// Link returns the link state: none while unpaired, up while syncs
// succeed, down while the server is unreachable.
func (c *Client) Link() Link {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.linkLocked()
}

func (c *Client) linkLocked() Link {
	switch {
	case !c.st.paired():
		return LinkNone
	case c.fails == 0 && !c.lastSync.IsZero():
		return LinkUp
	}
	return LinkDown
}

// Status is the client's state for totpctl status.
type Status struct {
	Server         string    `json:"server"`
	KeyID          string    `json:"key_id"`
	Paired         bool      `json:"paired"`
	ApplianceID    string    `json:"appliance_id,omitempty"`
	Name           string    `json:"name,omitempty"`
	PairingCode    string    `json:"pairing_code,omitempty"`
	PairingExpires time.Time `json:"pairing_expires,omitzero"`
	Link           string    `json:"link"`
	LastSync       time.Time `json:"last_sync,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
	Failures       int       `json:"failures"`
	Rev            int64     `json:"rev"`
	OpenOffers     int       `json:"open_offers"`
	PendingAcks    int       `json:"pending_acks"`
}

// Status returns the client's state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{Server: c.server.String(), KeyID: c.KeyID(), Paired: c.st.paired(), ApplianceID: c.st.ApplianceID,
		Name: c.st.Name, Link: c.linkLocked().String(), LastSync: c.lastSync, LastError: c.lastErr,
		Failures: c.fails, Rev: c.st.Rev, OpenOffers: len(c.offers), PendingAcks: len(c.st.Outbox)}
	if !s.Paired {
		s.PairingCode, s.PairingExpires = c.code, c.codeExpires
	}
	return s
}
