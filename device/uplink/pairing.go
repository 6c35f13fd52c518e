package uplink

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
)

// pair asks for a pairing code, or waits for the admin to type it.
func (c *Client) pair(ctx context.Context) error {
	c.mu.Lock()
	code, expires := c.code, c.codeExpires
	c.mu.Unlock()
	var p proto.Pairing
	if code == "" || !c.now().Before(expires) {
		req := proto.PairingRequest{BoxKey: c.id.boxPub[:], Version: c.cfg.Version}
		if err := c.do(ctx, http.MethodPost, proto.PairingPath, nil, req, &p, requestTimeout); err != nil {
			return err
		}
	} else {
		q := url.Values{"wait": {strconv.Itoa(int(c.cfg.Wait / time.Second))}}
		if err := c.do(ctx, http.MethodGet, proto.PairingPath, q, nil, &p, c.cfg.Wait+requestTimeout); err != nil {
			return err
		}
	}
	c.succeeded()
	return c.pairingAnswer(p)
}

func (c *Client) pairingAnswer(p proto.Pairing) error {
	switch p.State {
	case proto.PairingPaired:
		c.applyMu.Lock()
		defer c.applyMu.Unlock()
		st := syncState{Server: c.server.String(), ApplianceID: p.ApplianceID, Name: p.Name}
		if err := c.commit(st); err != nil {
			return err
		}
		c.mu.Lock()
		c.code, c.codeExpires = "", time.Time{}
		c.mu.Unlock()
		c.log.Info("paired with the server", "appliance", p.ApplianceID, "name", p.Name)
		c.notify()
	case proto.PairingWaiting:
		c.mu.Lock()
		changed := c.code != p.Code
		c.code, c.codeExpires = p.Code, p.ExpiresAt
		c.mu.Unlock()
		if changed {
			c.log.Info("waiting to be paired; the pairing code is on the screen", "expires", p.ExpiresAt)
			c.notify()
		}
	default:
		c.mu.Lock()
		c.code, c.codeExpires = "", time.Time{}
		c.mu.Unlock()
	}
	return nil
}

// lostPairing returns to pairing when the server no longer knows the key:
// after an unpair was applied and acknowledged, or when an admin made the
// server forget the appliance (then accounts are kept).
func (c *Client) lostPairing() error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	st := c.state()
	if !st.paired() {
		return nil
	}
	if st.UnpairRev == 0 {
		c.log.Warn("the server no longer knows this appliance; pairing again (accounts are kept)", "appliance", st.ApplianceID)
	} else {
		c.log.Info("unpaired from the server", "appliance", st.ApplianceID)
	}
	c.dropAllOffers()
	c.dropBatches()
	if err := c.commit(syncState{Server: c.server.String(), Wiped: st.Wiped, ReplacedBy: st.ReplacedBy}); err != nil {
		return err
	}
	c.notify()
	return nil
}
