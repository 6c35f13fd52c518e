package uplink

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll/proto"
)

// applyChange applies one change to the vault and the open offers, then saves
// the new revision and the change's ack together. Applying a change twice
// has the effect of applying it once.
func (c *Client) applyChange(ch proto.Change) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	st := c.state()
	if ch.Rev <= st.Rev && ch.Kind != proto.KindOffer && ch.Kind != proto.KindTakeover {
		return nil // applied before
	}
	refresh := false
	switch ch.Kind {
	case proto.KindOffer:
		c.offer(ch, &st)
	case proto.KindCancel, proto.KindExpire, proto.KindDelete:
		c.dropOffer(ch.DeviceID)
		n, err := c.vault.RemoveWhere(func(a vault.Account) bool { return a.Source == ch.DeviceID })
		if err != nil {
			return fmt.Errorf("apply %s of change %d: %w", ch.Kind, ch.Rev, err)
		}
		if n > 0 {
			c.log.Info("account removed by the server", "change", ch.Kind, "device", ch.DeviceID)
			refresh = true
		}
		st.addAck(proto.Ack{Rev: ch.Rev, Result: proto.ResultApplied})
	case proto.KindRename:
		label := labelOf(ch.Name)
		c.mu.Lock()
		if o := c.offers[ch.DeviceID]; o != nil {
			o.label = label
		}
		c.mu.Unlock()
		if a, ok := c.accountOf(ch.DeviceID); ok && a.Label != label {
			if _, err := c.vault.Rename(a.ID, label); err != nil {
				return fmt.Errorf("apply rename of change %d: %w", ch.Rev, err)
			}
			refresh = true
		}
		st.addAck(proto.Ack{Rev: ch.Rev, Result: proto.ResultApplied})
	case proto.KindActivate:
		// Registered by another path while offered here: the offer is
		// withdrawn (an OK on it must never install an active account
		// and show its secret). Servers withdraw it themselves with a
		// cancel; this covers one that only says activate.
		c.dropOffer(ch.DeviceID)
		if a, ok := c.accountOf(ch.DeviceID); ok && a.State != vault.Active {
			_, err := c.vault.Update(a.ID, func(a *vault.Account) error {
				a.State = vault.Active
				return nil
			})
			if err != nil {
				return fmt.Errorf("apply activate of change %d: %w", ch.Rev, err)
			}
			c.log.Info("account active", "device", ch.DeviceID)
			refresh = true
		}
		st.addAck(proto.Ack{Rev: ch.Rev, Result: proto.ResultApplied})
	case proto.KindTakeover:
		refresh = c.takeover(ch, &st)
	case proto.KindWipe:
		// Replaced by another appliance, which holds every account now:
		// the whole vault goes, local accounts too.
		c.dropAllOffers()
		c.dropBatches()
		n, err := c.vault.RemoveWhere(func(vault.Account) bool { return true })
		if err != nil {
			return fmt.Errorf("apply wipe: %w", err)
		}
		c.log.Info("replaced by another appliance: vault wiped", "removed", n, "replaced_by", ch.Name)
		refresh = true
		st.UnpairRev = ch.Rev
		st.Wiped, st.ReplacedBy = true, ch.Name
		st.addAck(proto.Ack{Rev: ch.Rev, Result: proto.ResultApplied})
	case proto.KindUnpair:
		c.dropAllOffers()
		n, err := c.vault.RemoveWhere(func(a vault.Account) bool { return !a.IsLocal() })
		if err != nil {
			return fmt.Errorf("apply unpair: %w", err)
		}
		c.log.Info("unpaired by the server: accounts from the server wiped", "removed", n)
		refresh = true
		st.UnpairRev = ch.Rev
		st.addAck(proto.Ack{Rev: ch.Rev, Result: proto.ResultApplied})
	default:
		c.log.Warn("skipping a change of unknown kind", "kind", ch.Kind, "rev", ch.Rev)
	}
	st.Rev = max(st.Rev, ch.Rev)
	if err := c.commit(st); err != nil {
		return err
	}
	c.wakeAcks()
	if refresh {
		c.notify()
	}
	return nil
}

// accountOf returns the account delivered for deviceID.
func (c *Client) accountOf(deviceID string) (vault.Account, bool) {
	for _, a := range c.vault.List() {
		if a.Source == deviceID && !a.IsLocal() {
			return a, true
		}
	}
	return vault.Account{}, false
}

// offer shows an offer, unless it is already answered, shown or stored.
// Called with applyMu held.
func (c *Client) offer(ch proto.Change, st *syncState) {
	if ch.State != proto.StatePending || ch.DeviceID == "" || ch.DeviceID == vault.SourceLocal {
		return
	}
	if _, ok := c.accountOf(ch.DeviceID); ok {
		// Accepted before a restart or a lost ack: say so again.
		st.addAck(proto.Ack{Rev: ch.Rev, Result: proto.ResultAccepted})
		return
	}
	if _, ok := st.ackFor(ch.Rev); ok {
		return // answered; the ack is on its way
	}
	c.mu.Lock()
	_, shown := c.offers[ch.DeviceID]
	c.mu.Unlock()
	if shown {
		return
	}
	until := ch.ExpiresAt.Sub(c.now())
	if until <= 0 {
		return
	}
	lifetime := c.cfg.OfferLifetime
	if lifetime <= 0 {
		lifetime = DefaultOfferLifetime
	}
	leave := until > lifetime // the appliance's lifetime ends it first
	until = min(until, lifetime)
	key, seq, err := proto.OpenOffer(ch.Sealed, ch.DeviceID, c.id.boxPub, c.id.boxPriv)
	if err != nil {
		c.log.Error("refusing an offer that cannot be opened", "device", ch.DeviceID, "err", err)
		st.addAck(proto.Ack{Rev: ch.Rev, Result: proto.ResultRejected})
		return
	}
	o := &openOffer{rev: ch.Rev, deviceID: ch.DeviceID, user: ch.User, devName: ch.DeviceName,
		label: labelOf(ch.DeviceName), key: key, sequence: seq, expires: ch.ExpiresAt}
	o.timer = time.AfterFunc(until, func() { c.lapse(o, leave) })
	c.mu.Lock()
	c.offerSeq++
	o.seq = c.offerSeq
	c.offers[ch.DeviceID] = o
	c.mu.Unlock()
	c.log.Info("offer shown", "device", ch.DeviceID, "user", ch.User)
	c.notify()
}

// Offer is a registration the server sent to this appliance, waiting for
// an answer on the appliance.
type Offer struct {
	// ID identifies the offer to Answer: the server's MFA device id, and
	// the Source of the account stored when it is accepted.
	ID string
	// User is the user the MFA device is registered for, and DeviceName
	// its name.
	User, DeviceName string
	// Sequence is the button sequence that accepts the offer ("next",
	// "back", "ok"), opened from the sealed offer: the console shows it,
	// the appliance never does.
	Sequence []string
}

// Offers returns the open offers, oldest first.
func (c *Client) Offers() []Offer {
	c.mu.Lock()
	open := make([]*openOffer, 0, len(c.offers))
	for _, o := range c.offers {
		open = append(open, o)
	}
	c.mu.Unlock()
	slices.SortFunc(open, func(a, b *openOffer) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Offer, len(open))
	for i, o := range open {
		out[i] = Offer{ID: o.deviceID, User: o.user, DeviceName: o.devName, Sequence: o.sequence}
	}
	return out
}

// Answer answers the open offer id: accept stores its account as pending
// (its Source is id) and queues the accept ack; otherwise the reject ack
// is queued. It returns ErrWithdrawn when id is no longer open.
func (c *Client) Answer(id string, accept bool) error {
	c.mu.Lock()
	o := c.offers[id]
	c.mu.Unlock()
	if o == nil {
		return ErrWithdrawn
	}
	if accept {
		return c.accept(o)
	}
	return c.reject(o)
}

// take removes o from the open offers if it is still there.
func (c *Client) take(o *openOffer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.offers[o.deviceID] != o {
		return false
	}
	delete(c.offers, o.deviceID)
	o.timer.Stop()
	return true
}

// forget clears the offer's opened key once it is no longer needed.
func (o *openOffer) forget() { clear(o.key.Secret) }

// ErrWithdrawn is returned by Answer after the server withdrew the offer
// or it lapsed, or when it was answered already.
var ErrWithdrawn = errors.New("the offer was withdrawn")

// accept stores the offered account as pending and queues the accept ack.
func (c *Client) accept(o *openOffer) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	if !c.take(o) {
		return ErrWithdrawn
	}
	defer o.forget()
	a, ok := c.accountOf(o.deviceID)
	if !ok {
		var err error
		a, err = c.vault.Add(vault.Account{Issuer: o.key.Issuer, Label: o.label, Key: o.key, State: vault.Pending, Source: o.deviceID, User: o.user})
		if err != nil {
			c.notify()
			// Not stored: the server offers it again at the next sync.
			return fmt.Errorf("store offered account: %w", err)
		}
	}
	c.log.Info("offer accepted on the appliance", "device", o.deviceID, "account", a.ID)
	c.queueAck(proto.Ack{Rev: o.rev, Result: proto.ResultAccepted})
	c.notify()
	return nil
}

// reject queues the reject ack.
func (c *Client) reject(o *openOffer) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	if !c.take(o) {
		return ErrWithdrawn
	}
	o.forget()
	c.notify()
	c.log.Info("offer rejected on the appliance", "device", o.deviceID)
	c.queueAck(proto.Ack{Rev: o.rev, Result: proto.ResultRejected})
	return nil
}

// queueAck adds an answer to the outbox. It is kept in memory for
// delivery even if saving fails; after a restart the server offers the
// offer again and the vault tells whether it was accepted.
func (c *Client) queueAck(a proto.Ack) {
	st := c.state()
	st.addAck(a)
	if err := c.commit(st); err != nil {
		c.log.Warn("saving an offer answer failed", "err", err)
		c.mu.Lock()
		c.st.addAck(a)
		c.mu.Unlock()
	}
	c.wakeAcks()
}

// lapse removes an offer from the open offers when it expires.
//
// An offer whose lifetime on the appliance ended before the server's
// expiry (reject) is rejected, so that the server does not send it again
// and the console says so.
func (c *Client) lapse(o *openOffer, reject bool) {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	if c.take(o) {
		c.log.Info("offer lapsed", "device", o.deviceID, "rejected", reject)
		if reject {
			c.queueAck(proto.Ack{Rev: o.rev, Result: proto.ResultRejected})
		}
		c.cancelShown(o)
	}
}

// dropOffer removes the open offer of deviceID. Called
// with applyMu held.
func (c *Client) dropOffer(deviceID string) {
	c.mu.Lock()
	o := c.offers[deviceID]
	c.mu.Unlock()
	if o != nil && c.take(o) {
		c.cancelShown(o)
	}
}

// dropAllOffers removes every open offer. Called with
// applyMu held.
func (c *Client) dropAllOffers() {
	c.mu.Lock()
	all := make([]*openOffer, 0, len(c.offers))
	for _, o := range c.offers {
		all = append(all, o)
	}
	c.mu.Unlock()
	for _, o := range all {
		if c.take(o) {
			c.cancelShown(o)
		}
	}
}

// cancelShown tells the reader of Changed that o, already taken from the
// open offers, is gone.
func (c *Client) cancelShown(o *openOffer) {
	o.forget()
	c.notify()
}
