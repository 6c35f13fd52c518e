package uplink

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
)

// A takeover batch is the accounts of an appliance this one replaces: the
// server queues one takeover change per account, all with the batch's id,
// and the appliance asks once for the batch. Once the person at the
// appliance agreed, the batch is remembered as accepted (in the sync
// state, across restarts), and accounts of it that arrive later are
// stored without asking again. Each account is stored once, by its MFA
// device id, however often its takeover comes.

// openBatch is a takeover batch published and not answered yet.
type openBatch struct {
	seq   int64
	id    string
	from  string
	items map[string]*takeoverItem // by MFA device id
}

// takeoverItem is one account of a batch, its key opened on arrival and
// cleared once stored or declined.
type takeoverItem struct {
	rev            int64
	deviceID, user string
	label          string
	key            enroll.Key
}

// Takeover is a batch of accounts of another appliance this one is asked
// to take over.
type Takeover struct {
	// ID identifies the batch to AnswerTakeover.
	ID string
	// From is the name of the appliance replaced.
	From string
	// Count is how many of its accounts wait here to be taken over.
	Count int
}

// Takeover returns the oldest takeover batch waiting for an answer.
func (c *Client) Takeover() (Takeover, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first *openBatch
	for _, b := range c.batches {
		if len(b.items) > 0 && (first == nil || b.seq < first.seq) {
			first = b
		}
	}
	if first == nil {
		return Takeover{}, false
	}
	return Takeover{ID: first.id, From: first.from, Count: len(first.items)}, true
}

// takeover handles a takeover change: stored already, it is acknowledged
// again; of a batch accepted before, it is stored at once; otherwise it
// joins its batch, which the appliance asks about. Called with applyMu
// held.
func (c *Client) takeover(ch proto.Change, st *syncState) (stored bool) {
	if ch.State != proto.StatePending || ch.DeviceID == "" || ch.DeviceID == vault.SourceLocal || ch.Batch == "" {
		return false
	}
	if _, ok := c.accountOf(ch.DeviceID); ok {
		st.addAck(proto.Ack{Rev: ch.Rev, Result: proto.ResultAccepted})
		return false
	}
	if _, ok := st.ackFor(ch.Rev); ok {
		return false // answered; the ack is on its way
	}
	key, err := proto.OpenTakeover(ch.Sealed, ch.DeviceID, c.id.boxPub, c.id.boxPriv)
	if err != nil {
		c.log.Error("refusing a takeover that cannot be opened", "device", ch.DeviceID, "err", err)
		st.addAck(proto.Ack{Rev: ch.Rev, Result: proto.ResultRejected})
		return false
	}
	it := &takeoverItem{rev: ch.Rev, deviceID: ch.DeviceID, user: ch.User, label: labelOf(ch.DeviceName), key: key}
	if slices.Contains(st.AcceptedBatches, ch.Batch) {
		if err := c.store(it, st); err != nil {
			c.log.Error("storing a taken-over account failed; the server sends it again", "device", ch.DeviceID, "err", err)
			return false
		}
		return true
	}
	c.mu.Lock()
	b := c.batches[ch.Batch]
	if b == nil {
		c.offerSeq++
		b = &openBatch{seq: c.offerSeq, id: ch.Batch, from: ch.From, items: map[string]*takeoverItem{}}
		c.batches[ch.Batch] = b
	}
	if old := b.items[ch.DeviceID]; old != nil {
		clear(old.key.Secret)
	}
	b.items[ch.DeviceID] = it
	c.mu.Unlock()
	c.log.Info("takeover shown", "batch", ch.Batch, "device", ch.DeviceID)
	c.notify()
	return false
}

// store puts a taken-over account into the vault, active (into the TPM
// where there is one), unless it is there already, and queues its accept
// ack in st. Its key is cleared. Called with applyMu held.
func (c *Client) store(it *takeoverItem, st *syncState) error {
	defer clear(it.key.Secret)
	if _, ok := c.accountOf(it.deviceID); !ok {
		a, err := c.vault.Add(vault.Account{Issuer: it.key.Issuer, Label: it.label, Key: it.key, State: vault.Active,
			Source: it.deviceID, User: it.user})
		if err != nil {
			return fmt.Errorf("store taken-over account: %w", err)
		}
		c.log.Info("account taken over", "device", it.deviceID, "account", a.ID)
	}
	st.addAck(proto.Ack{Rev: it.rev, Result: proto.ResultAccepted})
	return nil
}

// AnswerTakeover answers the takeover batch id: accept stores each of its
// accounts in the vault, active, and remembers the batch as accepted, so
// that its accounts arriving later are stored without asking; otherwise
// each is declined. It returns ErrWithdrawn when the batch is no longer
// open.
func (c *Client) AnswerTakeover(id string, accept bool) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	c.mu.Lock()
	b := c.batches[id]
	delete(c.batches, id)
	c.mu.Unlock()
	if b == nil || len(b.items) == 0 {
		return ErrWithdrawn
	}
	items := make([]*takeoverItem, 0, len(b.items))
	for _, it := range b.items {
		items = append(items, it)
	}
	slices.SortFunc(items, func(x, y *takeoverItem) int { return cmp.Compare(x.rev, y.rev) })
	st := c.state()
	var firstErr error
	if accept {
		if !slices.Contains(st.AcceptedBatches, id) {
			st.AcceptedBatches = append(st.AcceptedBatches, id)
		}
		for _, it := range items {
			if err := c.store(it, &st); err != nil && firstErr == nil {
				// Not stored: the server sends it again, and the batch
				// is accepted, so it is stored then.
				firstErr = err
			}
		}
		c.log.Info("takeover accepted on the appliance", "batch", id, "accounts", len(items))
	} else {
		for _, it := range items {
			clear(it.key.Secret)
			st.addAck(proto.Ack{Rev: it.rev, Result: proto.ResultRejected})
		}
		c.log.Info("takeover declined on the appliance", "batch", id, "accounts", len(items))
	}
	if err := c.commit(st); err != nil && firstErr == nil {
		firstErr = err
	}
	c.wakeAcks()
	c.notify()
	return firstErr
}

// dropBatches forgets every open takeover batch. Called with applyMu held.
func (c *Client) dropBatches() {
	c.mu.Lock()
	for id, b := range c.batches {
		for _, it := range b.items {
			clear(it.key.Secret)
		}
		delete(c.batches, id)
	}
	c.mu.Unlock()
}

// Wiped returns, after the server told this appliance it was replaced
// and its vault was wiped, the name of the appliance that replaced it;
// ok is false otherwise. It stays until the appliance is paired again.
func (c *Client) Wiped() (replacedBy string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.ReplacedBy, c.st.Wiped
}
