package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// AuditQuery selects audit events for export, oldest first.
type AuditQuery struct {
	// After returns only events with a higher ID: the cursor.
	After int64
	// Limit caps the events returned; zero or less means 100.
	Limit int
	// Action, when set, keeps events of that action; a value ending in
	// ".*" keeps every action that starts with what precedes the star.
	Action string
	// User, when set, keeps events the user made (actor) or that are
	// about the user (target "user:<name>" or "user:<name> …").
	User string
	// Since, when set, keeps events at or after it.
	Since time.Time
}

// WebhookEvent is one event of the outbox: what a webhook delivery
// carries. ID is the webhook-id of every delivery of it, across retries.
type WebhookEvent struct {
	ID   string
	Type string
	Time time.Time
	// Data is the JSON object of the event's data.
	Data string
}

// WebhookEndpoint is where webhook events are delivered.
type WebhookEndpoint struct {
	ID  string
	URL string
	// Events are the event types it receives; "*" alone means all.
	Events []string
	// Secret is the signing key, sealed by the master key.
	Secret   Sealed
	Disabled bool
	Created  time.Time
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryDead      = "dead"
)

// Delivery is one event to deliver to one endpoint.
type Delivery struct {
	ID         int64
	Event      WebhookEvent
	EndpointID string
	State      string
	Attempts   int
	// NextAttempt is when a pending delivery is due.
	NextAttempt time.Time
	LastError   string
	Created     time.Time
	DoneAt      time.Time
}

// DeliveryOutcome is the outcome of one leased delivery: its new state,
// when it is due again (pending) and the error of the attempt.
type DeliveryOutcome struct {
	ID        int64
	State     string
	Next      time.Time
	LastError string
}

// ApplianceAlert is an episode raised for an appliance and not yet
// cleared.
type ApplianceAlert struct {
	ApplianceID string
	Kind        string
	Since       time.Time
}

// EventStore holds what leaves the server: the audit cursor, the webhook
// outbox and its deliveries, and appliance alerts.
type EventStore interface {
	// AuditAfter returns audit events matching q, oldest first. IDs are
	// assigned in commit order, so a reader following the cursor (After
	// = the last ID it read) never passes a row that commits later, on
	// any replica.
	AuditAfter(ctx context.Context, q AuditQuery) ([]AuditEvent, error)
	// AuditWithEvent appends an audit event and, in the same transaction,
	// the webhook event of the change, with one pending delivery per
	// endpoint that subscribes to its type. ev.ID must be unique.
	AuditWithEvent(ctx context.Context, e AuditEvent, ev WebhookEvent) error

	// Webhook endpoints. CreateWebhook sets Created when zero;
	// UpdateWebhook stores URL, Events and Disabled. Both return
	// ErrNotFound for a missing id.
	CreateWebhook(ctx context.Context, w WebhookEndpoint) error
	Webhook(ctx context.Context, id string) (WebhookEndpoint, error)
	Webhooks(ctx context.Context) ([]WebhookEndpoint, error) // oldest first
	UpdateWebhook(ctx context.Context, w WebhookEndpoint) error
	DeleteWebhook(ctx context.Context, id string) error

	// ClaimDeliveries leases up to n pending deliveries due at now to
	// owner until until, and returns them with their events; a delivery
	// is leased by one owner at a time.
	ClaimDeliveries(ctx context.Context, owner string, now, until time.Time, n int) ([]Delivery, error)
	// FinishDelivery records the outcome of a leased delivery: state
	// delivered, or pending again at next, or dead. ErrStale when owner
	// no longer holds the lease (the outcome is not recorded).
	FinishDelivery(ctx context.Context, id int64, owner, state string, next time.Time, lastErr string, now time.Time) error
	// FinishDeliveries records several outcomes so, in one transaction:
	// errs[i] is what FinishDelivery would return for outs[i]; when the
	// transaction fails, each gets its error and none is recorded.
	FinishDeliveries(ctx context.Context, owner string, outs []DeliveryOutcome, now time.Time) (errs []error)
	// FinishAndClaimDeliveries is FinishDeliveries of outs and then
	// ClaimDeliveries, in one transaction: a deliverer's round costs the
	// store one write, not two. When the transaction fails, err and each
	// errs[i] are its error, and nothing is recorded or leased.
	FinishAndClaimDeliveries(ctx context.Context, owner string, outs []DeliveryOutcome, now, until time.Time, n int) (ds []Delivery, errs []error, err error)
	// Deliveries lists deliveries in state, newest first, up to limit.
	Deliveries(ctx context.Context, state string, limit int) ([]Delivery, error)
	// Redeliver makes a dead delivery pending again, due at now, with
	// its attempts reset. ErrNotFound when no dead delivery has id.
	Redeliver(ctx context.Context, id int64, now time.Time) error

	// ApplianceAlerts lists the open episodes.
	ApplianceAlerts(ctx context.Context) ([]ApplianceAlert, error)
	// RaiseApplianceAlert opens an episode and, in the same transaction,
	// records its audit event and webhook event; it reports false (and
	// records nothing) when the episode is already open.
	RaiseApplianceAlert(ctx context.Context, a ApplianceAlert, e AuditEvent, ev WebhookEvent) (bool, error)
	// ClearApplianceAlert closes an episode likewise; false when none
	// was open.
	ClearApplianceAlert(ctx context.Context, applianceID, kind string, e AuditEvent, ev WebhookEvent) (bool, error)
}

// auditLockKey is the PostgreSQL advisory lock every audit insert takes:
// with it, audit ids are drawn and committed one transaction at a time,
// so ids become visible in order and the export cursor never skips a row
// that an earlier id commits after a reader passed it.
const auditLockKey = 0x746f7470617564 // "totpaud"

// insertAudit inserts e in tx, holding the audit lock on PostgreSQL.
func (s *sqlStore) insertAudit(ctx context.Context, t *txq, e AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if s.d.name() == "postgres" {
		if _, err := t.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(auditLockKey)); err != nil {
			return err
		}
	}
	_, err := t.exec(ctx, `INSERT INTO audit_events (time, actor, action, target, detail, ip)
		VALUES (?, ?, ?, ?, ?, ?)`, s.d.timeArg(micro(e.Time)), e.Actor, e.Action, e.Target, e.Detail, e.IP)
	return err
}

// insertEvent writes ev to the outbox with a delivery per subscribed
// endpoint.
func (s *sqlStore) insertEvent(ctx context.Context, t *txq, ev WebhookEvent) error {
	if ev.ID == "" || ev.Type == "" {
		return errors.New("webhook event without id or type")
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.Data == "" {
		ev.Data = "{}"
	}
	now := s.d.timeArg(micro(ev.Time))
	if _, err := t.exec(ctx, `INSERT INTO webhook_events (id, type, time, data) VALUES (?, ?, ?, ?)`,
		ev.ID, ev.Type, now, ev.Data); err != nil {
		return err
	}
	// The endpoint subscribes when ",type," occurs in its list: tested
	// with replace, not LIKE, for SQLite compiles a statement again each
	// time the pattern of a LIKE is bound, and this one runs prepared in
	// every audited change's transaction.
	_, err := t.exec(ctx, `INSERT INTO webhook_deliveries (event_id, endpoint_id, next_attempt, created)
		SELECT ?, id, ?, ? FROM webhook_endpoints
		WHERE NOT disabled AND (events = ',*,' OR replace(events, ?, '') <> events)`,
		ev.ID, now, now, ","+ev.Type+",")
	return err
}

func (s *sqlStore) AuditWithEvent(ctx context.Context, e AuditEvent, ev WebhookEvent) error {
	return s.tx(ctx, "audit", func(t *txq) error {
		if err := s.insertAudit(ctx, t, e); err != nil {
			return err
		}
		return s.insertEvent(ctx, t, ev)
	})
}

func (s *sqlStore) AuditAfter(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	sq := `SELECT id, time, actor, action, target, detail, ip FROM audit_events WHERE id > ?`
	args := []any{q.After}
	if q.Action != "" {
		if p, ok := strings.CutSuffix(q.Action, "*"); ok {
			sq += ` AND action LIKE ? ESCAPE '\'`
			args = append(args, likeEscaper.Replace(p)+"%")
		} else {
			sq += ` AND action = ?`
			args = append(args, q.Action)
		}
	}
	if q.User != "" {
		p := "user:" + q.User + " "
		sq += ` AND (actor = ? OR target = ? OR substr(target, 1, ?) = ?)`
		args = append(args, q.User, "user:"+q.User, utf8.RuneCountInString(p), p)
	}
	if !q.Since.IsZero() {
		sq += ` AND time >= ?`
		args = append(args, s.d.timeArg(micro(q.Since)))
	}
	if q.Limit <= 0 {
		q.Limit = 100
	}
	sq += ` ORDER BY id LIMIT ?`
	args = append(args, q.Limit)
	rows, err := s.r.QueryContext(ctx, sq, args...)
	return collect(s, "audit events", rows, err, func(r rowScanner) (AuditEvent, error) {
		var e AuditEvent
		err := r.Scan(&e.ID, nullTime{&e.Time}, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.IP)
		return e, err
	})
}

// --- Webhook endpoints ---

func joinEvents(evs []string) string { return "," + strings.Join(evs, ",") + "," }

func splitEvents(s string) []string { return strings.Split(strings.Trim(s, ","), ",") }

const webhookCols = `id, url, events, key_id, secret, disabled, created`

func scanWebhook(r rowScanner) (WebhookEndpoint, error) {
	var w WebhookEndpoint
	var evs string
	err := r.Scan(&w.ID, &w.URL, &evs, &w.Secret.KeyID, &w.Secret.Ciphertext, &w.Disabled, nullTime{&w.Created})
	w.Events = splitEvents(evs)
	return w, err
}

func (s *sqlStore) CreateWebhook(ctx context.Context, w WebhookEndpoint) error {
	if w.ID == "" || w.URL == "" || len(w.Events) == 0 {
		return errors.New("create webhook: id, url and events are required")
	}
	if w.Created.IsZero() {
		w.Created = time.Now()
	}
	_, err := s.exec(ctx, `INSERT INTO webhook_endpoints (`+webhookCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.URL, joinEvents(w.Events), w.Secret.KeyID, w.Secret.Ciphertext, w.Disabled, s.d.timeArg(micro(w.Created)))
	return s.wrap("create webhook", err)
}

func (s *sqlStore) Webhook(ctx context.Context, id string) (WebhookEndpoint, error) {
	w, err := scanWebhook(s.r.QueryRowContext(ctx, `SELECT `+webhookCols+` FROM webhook_endpoints WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return w, fmt.Errorf("webhook %q: %w", id, ErrNotFound)
	}
	return w, s.wrap("webhook", err)
}

func (s *sqlStore) Webhooks(ctx context.Context) ([]WebhookEndpoint, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+webhookCols+` FROM webhook_endpoints ORDER BY created, id`)
	return collect(s, "webhooks", rows, err, scanWebhook)
}

func (s *sqlStore) UpdateWebhook(ctx context.Context, w WebhookEndpoint) error {
	res, err := s.exec(ctx, `UPDATE webhook_endpoints SET url = ?, events = ?, disabled = ? WHERE id = ?`,
		w.URL, joinEvents(w.Events), w.Disabled, w.ID)
	return s.wrap("update webhook", affected(res, err, "webhook "+w.ID))
}

func (s *sqlStore) DeleteWebhook(ctx context.Context, id string) error {
	res, err := s.exec(ctx, `DELETE FROM webhook_endpoints WHERE id = ?`, id)
	return s.wrap("delete webhook", affected(res, err, "webhook "+id))
}

// affected turns zero rows affected into ErrNotFound.
func affected(res sql.Result, err error, what string) error {
	n, err := changed(res, err)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// --- Deliveries ---

const deliveryCols = `d.id, d.endpoint_id, d.state, d.attempts, d.next_attempt, d.last_error, d.created, d.done_at,
	e.id, e.type, e.time, e.data`

func scanDelivery(r rowScanner) (Delivery, error) {
	var d Delivery
	err := r.Scan(&d.ID, &d.EndpointID, &d.State, &d.Attempts, nullTime{&d.NextAttempt}, &d.LastError,
		nullTime{&d.Created}, nullTime{&d.DoneAt},
		&d.Event.ID, &d.Event.Type, nullTime{&d.Event.Time}, &d.Event.Data)
	return d, err
}

func (s *sqlStore) ClaimDeliveries(ctx context.Context, owner string, now, until time.Time, n int) ([]Delivery, error) {
	ds, _, err := s.FinishAndClaimDeliveries(ctx, owner, nil, now, until, n)
	return ds, err
}

func (s *sqlStore) FinishAndClaimDeliveries(ctx context.Context, owner string, outs []DeliveryOutcome, now, until time.Time, n int) ([]Delivery, []error, error) {
	if owner == "" || n <= 0 {
		return nil, nil, errors.New("claim deliveries: owner and n are required")
	}
	nowA, untilA := s.d.timeArg(micro(now)), s.d.timeArg(micro(until))
	if len(outs) == 0 {
		// A read first: most claims (a poll, the one after a batch)
		// find nothing due, and then take no write lock (SQLite has
		// one writer, which the verifies share).
		var one int
		switch err := s.r.QueryRowContext(ctx, `SELECT 1 FROM webhook_deliveries
			WHERE state = 'pending' AND next_attempt <= ? AND (lease_until IS NULL OR lease_until < ?) LIMIT 1`,
			nowA, nowA).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return nil, nil, nil
		case err != nil:
			return nil, nil, s.wrap("claim deliveries", err)
		}
	}
	skip := ""
	if s.d.name() == "postgres" {
		skip = ` FOR UPDATE SKIP LOCKED`
	}
	// The outcomes, then one statement that leases the deliveries, in
	// one transaction (the write lock is held for those statements
	// alone), and one statement that reads them back from the read
	// pool: a claim costs the store two statements, however many
	// deliveries it takes (at most n; the IN list is as long). The
	// lease's condition is checked again on the row, so a delivery
	// leased since the inner select stays with its owner (PostgreSQL;
	// SQLite has one writer). What is read back is the owner's while its
	// lease lasts: only the owner changes a leased delivery.
	var ids []any
	errs := make([]error, len(outs))
	err := s.tx(ctx, "claim deliveries", func(t *txq) error {
		if err := s.finishIn(ctx, t, owner, outs, now, errs); err != nil {
			return err
		}
		// The candidates are a materialized CTE: a subquery in the IN
		// list could run more than once and lease more than n.
		rows, err := t.QueryContext(ctx, `WITH cand AS MATERIALIZED (
				SELECT id FROM webhook_deliveries
				WHERE state = 'pending' AND next_attempt <= ? AND (lease_until IS NULL OR lease_until < ?)
				ORDER BY next_attempt, id LIMIT ?`+skip+`)
			UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?
			WHERE state = 'pending' AND (lease_until IS NULL OR lease_until < ?) AND id IN (SELECT id FROM cand)
			RETURNING id`, nowA, nowA, n, owner, untilA, nowA)
		ids, err = collect(s, "claim deliveries", rows, err, func(r rowScanner) (any, error) {
			var id int64
			err := r.Scan(&id)
			return id, err
		})
		return err
	})
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return nil, errs, err
	}
	if len(ids) == 0 {
		return nil, errs, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryCols+`
		FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
		WHERE d.id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY d.next_attempt, d.id`, ids...)
	ds, err := collect(s, "claim deliveries", rows, err, scanDelivery)
	return ds, errs, err
}

func (s *sqlStore) FinishDelivery(ctx context.Context, id int64, owner, state string, next time.Time, lastErr string, now time.Time) error {
	return s.FinishDeliveries(ctx, owner, []DeliveryOutcome{{ID: id, State: state, Next: next, LastError: lastErr}}, now)[0]
}

func (s *sqlStore) FinishDeliveries(ctx context.Context, owner string, outs []DeliveryOutcome, now time.Time) []error {
	errs := make([]error, len(outs))
	err := s.tx(ctx, "finish deliveries", func(t *txq) error {
		return s.finishIn(ctx, t, owner, outs, now, errs)
	})
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

// finishIn records outs in t, setting errs[i] to ErrStale for an outcome
// whose lease owner no longer holds; it returns the error that fails the
// transaction.
func (s *sqlStore) finishIn(ctx context.Context, t *txq, owner string, outs []DeliveryOutcome, now time.Time, errs []error) error {
	for i, o := range outs {
		var done any
		next := o.Next
		if next.IsZero() {
			next = now
		}
		if o.State != DeliveryPending {
			done = s.d.timeArg(micro(now))
		}
		res, err := t.exec(ctx, `UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, next_attempt = ?,
			last_error = ?, done_at = ?, lease_owner = '', lease_until = NULL
			WHERE id = ? AND lease_owner = ? AND state = 'pending'`,
			o.State, s.d.timeArg(micro(next)), o.LastError, done, o.ID, owner)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			errs[i] = fmt.Errorf("finish delivery %d: %w", o.ID, ErrStale)
		}
	}
	return nil
}

func (s *sqlStore) Deliveries(ctx context.Context, state string, limit int) ([]Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryCols+`
		FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
		WHERE d.state = ? ORDER BY d.id DESC LIMIT ?`, state, limit)
	return collect(s, "deliveries", rows, err, scanDelivery)
}

func (s *sqlStore) Redeliver(ctx context.Context, id int64, now time.Time) error {
	res, err := s.exec(ctx, `UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt = ?,
		created = ?, done_at = NULL, lease_owner = '', lease_until = NULL WHERE id = ? AND state = 'dead'`,
		s.d.timeArg(micro(now)), s.d.timeArg(micro(now)), id)
	return s.wrap("redeliver", affected(res, err, fmt.Sprintf("dead delivery %d", id)))
}

// --- Appliance alerts ---

func (s *sqlStore) ApplianceAlerts(ctx context.Context) ([]ApplianceAlert, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT appliance_id, kind, since FROM appliance_alerts ORDER BY appliance_id, kind`)
	return collect(s, "appliance alerts", rows, err, func(r rowScanner) (ApplianceAlert, error) {
		var a ApplianceAlert
		err := r.Scan(&a.ApplianceID, &a.Kind, nullTime{&a.Since})
		return a, err
	})
}

func (s *sqlStore) RaiseApplianceAlert(ctx context.Context, a ApplianceAlert, e AuditEvent, ev WebhookEvent) (bool, error) {
	return s.alertChange(ctx, "raise appliance alert", e, ev, `INSERT INTO appliance_alerts (appliance_id, kind, since) VALUES (?, ?, ?)
			ON CONFLICT (appliance_id, kind) DO NOTHING`, a.ApplianceID, a.Kind, s.d.timeArg(micro(a.Since)))
}

func (s *sqlStore) ClearApplianceAlert(ctx context.Context, applianceID, kind string, e AuditEvent, ev WebhookEvent) (bool, error) {
	return s.alertChange(ctx, "clear appliance alert", e, ev, `DELETE FROM appliance_alerts WHERE appliance_id = ? AND kind = ?`, applianceID, kind)
}

// alertChange runs query on appliance_alerts and, in the same transaction,
// writes the audit row e and the webhook event ev when it changed a row;
// it reports whether it did.
func (s *sqlStore) alertChange(ctx context.Context, what string, e AuditEvent, ev WebhookEvent, query string, args ...any) (bool, error) {
	var changed bool
	err := s.tx(ctx, what, func(t *txq) error {
		res, err := t.exec(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		changed = true
		if err := s.insertAudit(ctx, t, e); err != nil {
			return err
		}
		return s.insertEvent(ctx, t, ev)
	})
	return changed, err
}
