package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/store"
)

// offerPayload is the stored payload of an offer change.
type offerPayload struct {
	User       string `json:"user"`
	DeviceName string `json:"device_name"`
	Sealed     []byte `json:"sealed"`
	// Sequence is the button sequence sealed in the offer, kept for the
	// console to show; it never goes to the appliance in the clear.
	Sequence []string `json:"sequence,omitempty"`
	// Takeover is set on a takeover of an active account by a spare
	// replacing another appliance (see replace.go): Sealed is then sealed
	// with proto.SealTakeover and there is no sequence.
	Takeover *takeoverPayload `json:"takeover,omitempty"`
}

// renamePayload is the stored payload of a rename change.
type renamePayload struct {
	Name string `json:"name"`
}

// wireChange converts a stored change for the appliance.
func wireChange(c store.Change) (proto.Change, error) {
	w := proto.Change{Rev: c.Rev, Kind: string(c.Kind), DeviceID: c.DeviceUID, State: string(c.State)}
	switch c.Kind {
	case store.ChangeOffer:
		w.ExpiresAt = c.Expires.UTC()
		if c.State != store.ChangePending {
			break // answered offers have no payload left
		}
		var p offerPayload
		if err := json.Unmarshal(c.Payload, &p); err != nil {
			return w, fmt.Errorf("change %d: offer payload: %w", c.Rev, err)
		}
		w.User, w.DeviceName, w.Sealed = p.User, p.DeviceName, p.Sealed
		if t := p.Takeover; t != nil {
			w.Kind, w.Batch, w.From, w.Count = proto.KindTakeover, t.Batch, t.From, t.Count
		}
	case store.ChangeUnpair:
		var p wipePayload
		if len(c.Payload) > 0 && json.Unmarshal(c.Payload, &p) == nil && p.Wipe {
			w.Kind, w.Name = proto.KindWipe, p.ReplacedBy
		}
	case store.ChangeRename:
		var p renamePayload
		if err := json.Unmarshal(c.Payload, &p); err != nil {
			return w, fmt.Errorf("change %d: rename payload: %w", c.Rev, err)
		}
		w.Name = p.Name
	}
	return w, nil
}

// SeenEvery is how often a sync that reports nothing new rewrites the
// appliance's last-seen time: an idle appliance renews its sync every
// proto.MaxWait, and rewriting the appliance's row on each renewal would
// cost the database a row write per appliance a minute. So LastSeen is
// up to SeenEvery older than the appliance's last sync (its precision). A
// sync that changes the version, accounts, secrets mode or clock state,
// or moves the clock offset or bound by more than ClockSlack, is written
// at once; the clock history keeps its sample a minute regardless.
const SeenEvery = 5 * time.Minute

// ClockSlack is how far an appliance's clock offset or bound may move
// before a sync rewrites its stored clock report before SeenEvery: the
// console's offset and bound are within ClockSlack of the last sync's.
const ClockSlack = 100 * time.Millisecond

// handleChanges answers GET {id}/changes: the changes after a revision,
// held up to the requested wait while there is nothing new. One store
// transaction (store.SyncAppliance) looks the key up, records the nonce,
// records the appliance as seen (with its clock report and secrets mode;
// at most every SeenEvery unless something changed) and reads the
// changes: an idle renewal costs the database one commit.
func (a *API) handleChanges(w http.ResponseWriter, r *http.Request) {
	pub, _, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	q, err := proto.ParseSyncQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, proto.CodeBadRequest, err.Error())
		return
	}
	now := a.clock.Now()
	expires, err := nonceExpires(r)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	seen := store.ApplianceSeen{At: now, Version: q.Version, Accounts: q.Accounts, Secrets: q.Secrets}
	var sample store.ClockSample
	if c := q.Clock; c != nil {
		seen.Clock = store.ClockReport{ApplianceTime: c.Time, Bound: c.Bound, BoundUnknown: !c.BoundKnown(), State: c.State,
			Frequency: c.Frequency, Authenticated: c.Authenticated, Offset: now.Sub(c.Time), At: now}
		// The chart's history: at most one sample a minute (the store
		// keeps the first of each).
		sample = store.ClockSample{At: now, Offset: seen.Clock.Offset, Bound: c.Bound, BoundUnknown: !c.BoundKnown(), State: c.State}
	}
	// Watch before the store reads the changes, so that a change written
	// in between wakes this sync; the path's id is the appliance's own,
	// or the request is refused below.
	id := r.PathValue("id")
	ch, release := a.notify.watch(id)
	res, err := a.store.SyncAppliance(r.Context(), store.SyncRequest{
		SignKey: pub, KeyID: proto.KeyID(pub), Nonce: r.Header.Get(proto.HeaderNonce), NonceExpires: expires,
		Seen: seen, SeenEvery: SeenEvery, ClockSlack: ClockSlack, Sample: sample,
		After: q.After, Now: now, Limit: a.cfg.ChangesLimit + 1,
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		release()
		if !a.unauthLimited(w, r) {
			writeError(w, http.StatusUnauthorized, proto.CodeNotPaired, "this appliance's key is not paired with the server")
		}
		return
	case errors.Is(err, store.ErrConflict):
		release()
		a.refuse(w, r, proto.ErrReplay, now)
		return
	case err != nil:
		release()
		a.internal(w, r, err)
		return
	}
	// This process's replay cache too, as for every appliance request,
	// once the key is known: unknown keys never fill it.
	if err := a.verifier.Remember(r, pub, now); err != nil {
		release()
		a.refuse(w, r, err, now)
		return
	}
	app, list := res.Appliance, res.Changes
	if id != app.ID {
		release()
		a.log.Warn("appliance asked for another appliance's resource", "appliance", app.ID, "path", r.URL.Path)
		writeError(w, http.StatusForbidden, proto.CodeForbidden, "this appliance may use only its own changes")
		return
	}
	timeout, expired, end := a.holdUpTo(app.ID, min(q.Wait, a.cfg.MaxWait), false)
	defer end()
	for {
		resp, fresh, err := a.changesResponse(list, q.After)
		if err != nil {
			release()
			a.internal(w, r, err)
			return
		}
		if fresh || expired {
			release()
			resp.Rev = max(resp.Rev, app.Rev)
			writeJSON(w, http.StatusOK, resp)
			a.delivered(app.ID, list, resp, q.After)
			return
		}
		select {
		case <-ch:
			// Woken: the appliance may have been forgotten meanwhile.
			if _, err := a.store.Appliance(r.Context(), app.ID); errors.Is(err, store.ErrNotFound) {
				release()
				writeError(w, http.StatusUnauthorized, proto.CodeNotPaired, "this appliance's key is not paired with the server")
				return
			}
		case <-timeout:
			expired = true
			if len(list) == 0 {
				// Nothing was open: answer empty without reading again,
				// as an idle appliance's renewal ends. A change whose
				// wake this sync missed is read by the next sync, which
				// the appliance sends at once.
				continue
			}
		case <-r.Context().Done():
			release()
			return
		}
		release()
		ch, release = a.notify.watch(app.ID)
		list, err = a.store.Changes(r.Context(), app.ID, q.After, a.clock.Now(), a.cfg.ChangesLimit+1)
		if err != nil {
			release()
			a.internal(w, r, err)
			return
		}
	}
}

// changesResponse builds the answer from the store's list, which holds up
// to ChangesLimit+1 changes after `after`, and reports whether any is new.
func (a *API) changesResponse(list []store.Change, after int64) (proto.Changes, bool, error) {
	resp := proto.Changes{Changes: make([]proto.Change, 0, len(list))}
	fresh := 0
	for _, c := range list {
		if c.Rev > after {
			if fresh == a.cfg.ChangesLimit {
				resp.More = true
				break
			}
			fresh++
		}
		wc, err := wireChange(c)
		if err != nil {
			return resp, false, err
		}
		resp.Changes = append(resp.Changes, wc)
		resp.Rev = max(resp.Rev, c.Rev)
	}
	return resp, fresh > 0, nil
}

// MaxAcks is the most acks one request may carry.
const MaxAcks = 1000

// handleAck answers POST {id}/ack: it records what the appliance applied
// and its answers to offers.
func (a *API) handleAck(w http.ResponseWriter, r *http.Request) {
	app, body, ok := a.paired(w, r)
	if !ok {
		return
	}
	req, err := parseAckRequest(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, proto.CodeBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	resp := proto.AckResponse{Results: make([]proto.AckResult, 0, len(req.Acks))}
	unpaired := false
	for _, ack := range req.Acks {
		c, err := a.store.Change(ctx, app.ID, ack.Rev)
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusBadRequest, proto.CodeBadRequest, fmt.Sprintf("no change %d", ack.Rev))
			return
		}
		if err != nil {
			a.internal(w, r, err)
			return
		}
		var state store.ChangeState
		switch {
		case c.Kind == store.ChangeOffer && ack.Result == proto.ResultAccepted:
			state = store.ChangeAccepted
		case c.Kind == store.ChangeOffer && ack.Result == proto.ResultRejected:
			state = store.ChangeRejected
		case c.Kind != store.ChangeOffer && ack.Result == proto.ResultApplied:
			state = store.ChangeAcked
		default:
			writeError(w, http.StatusBadRequest, proto.CodeBadRequest,
				fmt.Sprintf("result %q does not fit change %d, a %s", ack.Result, ack.Rev, c.Kind))
			return
		}
		prev := c.State
		takeover := c.Kind == store.ChangeOffer && isTakeover(c.Payload)
		c, err = a.store.AnswerChange(ctx, app.ID, ack.Rev, state, a.clock.Now())
		if err != nil && !errors.Is(err, store.ErrStale) {
			a.internal(w, r, err)
			return
		}
		resp.Results = append(resp.Results, proto.AckResult{Rev: c.Rev, State: string(c.State)})
		if prev == store.ChangePending && c.State == state && !takeover {
			a.answered(r, app, c)
		}
		// A takeover's answer is applied again on a repeated ack: the
		// first may have been recorded without the move (a restart in
		// between), and the move itself is once only.
		if c.Kind == store.ChangeOffer && c.State == state && (takeover || prev != store.ChangePending) {
			if err := a.takeoverAnswered(r, app, c); err != nil {
				a.internal(w, r, err)
				return
			}
		}
		if c.Kind == store.ChangeUnpair && c.State == store.ChangeAcked {
			unpaired = true
		}
	}
	if unpaired {
		if err := a.store.DeleteAppliance(ctx, app.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.internal(w, r, err)
			return
		}
		a.audit(r, app, "appliance.unpaired", "appliance:"+app.ID, "accounts from the server wiped")
		a.wake(keyTopic(app.SignKey))
		a.wake(app.ID) // a held sync answers not_paired
	}
	writeJSON(w, http.StatusOK, resp)
}

// isTakeover reports whether an offer's payload is a takeover's.
func isTakeover(payload []byte) bool {
	var p offerPayload
	return len(payload) > 0 && json.Unmarshal(payload, &p) == nil && p.Takeover != nil
}

// answered logs and audits an offer answered on the appliance.
func (a *API) answered(r *http.Request, app store.Appliance, c store.Change) {
	if c.Kind != store.ChangeOffer {
		return
	}
	action := "offer.accept"
	if c.State == store.ChangeRejected {
		action = "offer.reject"
	}
	a.log.Info("offer answered on the appliance", "appliance", app.ID, "device", c.DeviceUID, "state", c.State)
	a.audit(r, app, action, "device:"+c.DeviceUID, "")
}

func (a *API) audit(r *http.Request, app store.Appliance, action, target, detail string) {
	a.record(r.Context(), store.AuditEvent{Time: a.clock.Now(), Actor: "appliance:" + app.Name, Action: action,
		Target: target, Detail: detail, IP: a.cfg.ClientIP(r)})
}

// record stores the audit event e, with its webhook event when it raises
// one, and hands it to the event sinks.
func (a *API) record(ctx context.Context, e store.AuditEvent) {
	action := e.Action
	var err error
	if ev, ok := events.WebhookEvent(e); ok {
		if err = a.store.AuditWithEvent(ctx, e, ev); err == nil {
			a.bus.Publish(events.NoticeWebhookEvent, ev.ID)
		}
	} else {
		err = a.store.Audit(ctx, e)
	}
	if err != nil {
		a.log.Warn("audit", "action", action, "err", err)
		return
	}
	if a.cfg.Events != nil {
		a.cfg.Events.Publish(e)
	}
}
