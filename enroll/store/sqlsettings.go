package store

import (
	"context"
	"errors"
	"strconv"
	"time"
)

func (s *sqlStore) Settings(ctx context.Context) (map[string]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, value FROM settings`)
	if err != nil {
		return nil, s.wrap("settings", err)
	}
	defer rows.Close()
	m := make(map[string]string)
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, s.wrap("settings", err)
		}
		m[k] = v
	}
	return m, s.wrap("settings", rows.Err())
}

func (s *sqlStore) SetSetting(ctx context.Context, name, value string) error {
	if name == "" {
		return errors.New("set setting: empty name")
	}
	_, err := s.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return s.wrap("set setting "+strconv.Quote(name), err)
}

func (s *sqlStore) Audit(ctx context.Context, e AuditEvent) error {
	if s.d.name() != "postgres" {
		// One writer at a time: ids commit in order without a lock.
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		_, err := s.exec(ctx, `INSERT INTO audit_events (time, actor, action, target, detail, ip)
		VALUES (?, ?, ?, ?, ?, ?)`, s.d.timeArg(micro(e.Time)), e.Actor, e.Action, e.Target, e.Detail, e.IP)
		return s.wrap("audit", err)
	}
	return s.tx(ctx, "audit", func(t *txq) error { return s.insertAudit(ctx, t, e) })
}

func (s *sqlStore) AuditEvents(ctx context.Context, limit int, before int64) ([]AuditEvent, error) {
	q := `SELECT id, time, actor, action, target, detail, ip FROM audit_events`
	var args []any
	if before > 0 {
		q += ` WHERE id < ?`
		args = append(args, before)
	}
	q += ` ORDER BY id DESC`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	return collect(s, "audit events", rows, err, func(r rowScanner) (AuditEvent, error) {
		var e AuditEvent
		err := r.Scan(&e.ID, nullTime{&e.Time}, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.IP)
		return e, err
	})
}
