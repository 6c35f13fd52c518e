package uplink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// sync fetches changes after the saved revision and applies them. The
// first sync of a pairing reconciles first.
func (c *Client) sync(ctx context.Context, wait time.Duration) error {
	if !c.state().Reconciled {
		if err := c.reconcile(ctx); err != nil {
			return err
		}
		if !c.isPaired() {
			return nil
		}
	}
	st := c.state()
	q := proto.SyncQuery{After: st.Rev, Wait: wait, Version: c.cfg.Version, Accounts: len(c.vault.List())}
	r := c.cfg.Clock.Now()
	q.Clock = &proto.ClockReport{Time: r.Time, Bound: r.Bound, State: r.State.String(), Frequency: r.Frequency,
		Authenticated: r.Authenticated}
	if c.cfg.Secrets != nil {
		q.Secrets = c.cfg.Secrets()
	}
	var resp proto.Changes
	start := time.Now()
	err := c.do(ctx, http.MethodGet, proto.ChangesPath(st.ApplianceID), q.Encode(), nil, &resp, wait+requestTimeout)
	if c.cfg.OnSync != nil && ctx.Err() == nil {
		c.cfg.OnSync(wait, time.Since(start), err)
	}
	if errorCode(err) == proto.CodeNotPaired {
		return c.lostPairing()
	}
	if err != nil {
		return err
	}
	c.succeeded()
	for _, ch := range resp.Changes {
		if err := c.applyChange(ch); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.more = resp.More
	c.mu.Unlock()
	return nil
}

// reconcile reports, once per pairing and before its first sync, the
// accounts the server placed under an earlier pairing (the server
// unpaired or forgot the appliance while it kept them): the server
// re-adopts those whose MFA device is active and on no other appliance
// (an adopted account still pending here becomes active), and the rest are
// wiped. Accounts added on the appliance are untouched.
// A server without the endpoint (404) adopts nothing and wipes nothing.
func (c *Client) reconcile(ctx context.Context) error {
	st := c.state()
	var held []string
	for _, a := range c.vault.List() {
		if !a.IsLocal() && !slices.Contains(held, a.Source) {
			held = append(held, a.Source)
		}
	}
	keep := make(map[string]bool, len(held))
	older := false
	for chunk := range slices.Chunk(held, proto.MaxHeld) {
		var resp proto.HeldResponse
		err := c.do(ctx, http.MethodPost, proto.HeldPath(st.ApplianceID), nil, proto.HeldRequest{DeviceIDs: chunk}, &resp, requestTimeout)
		if errorCode(err) == proto.CodeNotPaired {
			return c.lostPairing()
		}
		var se *StatusError
		if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
			older = true
			break
		}
		if err != nil {
			return fmt.Errorf("reconcile accounts from an earlier pairing: %w", err)
		}
		for _, id := range resp.Adopted {
			keep[id] = true
		}
	}
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	if cur := c.state(); cur.ApplianceID != st.ApplianceID {
		return nil // paired again meanwhile: the next sync reconciles
	}
	wiped := 0
	if !older {
		n, err := c.vault.RemoveWhere(func(a vault.Account) bool {
			return !a.IsLocal() && slices.Contains(held, a.Source) && !keep[a.Source]
		})
		if err != nil {
			return fmt.Errorf("wipe accounts from an earlier pairing: %w", err)
		}
		wiped = n
		// The server adopts only active MFA devices: an account still
		// pending here (confirmed while the appliance was away) is active.
		for _, a := range c.vault.List() {
			if a.IsLocal() || !keep[a.Source] || a.State == vault.Active {
				continue
			}
			if _, err := c.vault.Update(a.ID, func(a *vault.Account) error {
				a.State = vault.Active
				return nil
			}); err != nil {
				return fmt.Errorf("activate an adopted account: %w", err)
			}
		}
	}
	st = c.state()
	st.Reconciled = true
	if err := c.commit(st); err != nil {
		return err
	}
	if len(held) > 0 {
		c.log.Info("accounts from an earlier pairing reconciled", "reported", len(held), "adopted", len(keep), "wiped", wiped, "server_without_reconcile", older)
		c.notify()
	}
	return nil
}

func (c *Client) wakeAcks() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// ackLoop delivers the outbox whenever it holds acks, with backoff.
func (c *Client) ackLoop(ctx context.Context) {
	fails := 0
	for {
		st := c.state()
		if len(st.Outbox) == 0 || !st.paired() {
			select {
			case <-ctx.Done():
				return
			case <-c.wake:
			}
			continue
		}
		batch := st.Outbox
		var resp proto.AckResponse
		err := c.do(ctx, http.MethodPost, proto.AckPath(st.ApplianceID), nil, proto.AckRequest{Acks: batch}, &resp, requestTimeout)
		switch code := errorCode(err); {
		case err == nil:
			fails = 0
			c.succeeded()
			if err := c.acked(batch, resp); err != nil {
				c.log.Warn("saving delivered acks failed", "err", err)
			}
			continue
		case code == proto.CodeNotPaired:
			if err := c.lostPairing(); err != nil {
				c.log.Warn("leaving the pairing failed", "err", err)
			}
			continue
		case code == proto.CodeBadRequest:
			// The server cannot take these acks (changes it no longer
			// has); retrying would never succeed.
			c.log.Warn("the server refused acks; dropping them", "err", err)
			c.acked(batch, proto.AckResponse{})
			continue
		case ctx.Err() != nil:
			return
		}
		fails++
		c.failed(fmt.Errorf("deliver acks: %w", err))
		if wallclock.Sleep(ctx, c.retryDelay(err, fails)) != nil {
			return
		}
	}
}

// acked removes delivered acks from the outbox and finishes an unpair.
func (c *Client) acked(batch []proto.Ack, resp proto.AckResponse) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	st := c.state()
	if st.UnpairRev != 0 {
		for _, a := range batch {
			if a.Rev == st.UnpairRev {
				// The server has the unpair's ack and forgot the
				// appliance.
				c.log.Info("unpaired from the server", "appliance", st.ApplianceID)
				c.dropAllOffers()
				c.dropBatches()
				err := c.commit(syncState{Server: c.server.String(), Wiped: st.Wiped, ReplacedBy: st.ReplacedBy})
				c.notify()
				return err
			}
		}
	}
	st.Outbox = slices.DeleteFunc(st.Outbox, func(o proto.Ack) bool { return slices.Contains(batch, o) })
	return c.commit(st)
}

// labelOf turns a device name into an account label the vault accepts.
func labelOf(name string) string {
	if utf8.RuneCountInString(name) <= vault.MaxLabelLen {
		return name
	}
	return string([]rune(name)[:vault.MaxLabelLen])
}
