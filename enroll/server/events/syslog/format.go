// Package syslog sends audit events to a syslog collector (a SIEM) as
// RFC 5424 messages with structured data, over TLS (RFC 5425), plain TCP
// (octet-counting framing, RFC 6587) or UDP (RFC 5426). Go's log/syslog
// speaks only the older RFC 3164 format; this is the small 5424 writer.
//
// A Writer queues events in a bounded queue that never blocks its
// caller (the verify and sign-in paths); when the queue is full, events
// are dropped, counted, and the count is logged once a minute. It
// reconnects with backoff.
package syslog

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/store"
)

// SDID is the structured data element's id: totpbox's parameters under
// the example private enterprise number of RFC 5612 (32473), until the
// project has one of its own.
const SDID = "totpbox@32473"

// Facility is authpriv (10): security and authorisation messages.
const Facility = 10

// Severities.
const (
	sevWarning = 4
	sevNotice  = 5
)

// Header is what a message says of its sender.
type Header struct {
	// Hostname names the server; empty means "-".
	Hostname string
	// AppName is the program; empty means "totpserver".
	AppName string
	// ProcID is the process id; empty means "-".
	ProcID string
}

// Format returns e as one RFC 5424 message, without framing:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [totpbox@32473 event=… actor=… target=… address=… result=…] detail
//
// MSGID is the audit action; the severity is warning for a failure and
// notice otherwise.
func Format(h Header, e store.AuditEvent) []byte {
	sev := sevNotice
	result := events.Result(e.Action)
	if result == "failure" {
		sev = sevWarning
	}
	b := make([]byte, 0, 256)
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(Facility*8+sev), 10)
	b = append(b, ">1 "...)
	b = e.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, ' ')
	b = appendField(b, h.Hostname, 255, "-")
	b = append(b, ' ')
	b = appendField(b, h.AppName, 48, "totpserver")
	b = append(b, ' ')
	b = appendField(b, h.ProcID, 128, "-")
	b = append(b, ' ')
	b = appendField(b, e.Action, 32, "-")
	b = append(b, " ["+SDID...)
	for _, p := range [...]struct{ name, value string }{
		{"event", e.Action}, {"actor", e.Actor}, {"target", e.Target}, {"address", e.IP}, {"result", result},
	} {
		if p.value == "" {
			continue
		}
		b = append(b, ' ')
		b = append(b, p.name...)
		b = append(b, `="`...)
		b = appendParam(b, p.value)
		b = append(b, '"')
	}
	b = append(b, ']')
	if e.Detail != "" {
		b = append(b, ' ')
		b = append(b, oneLine(e.Detail)...)
	}
	return b
}

// appendField appends a header field: printable US-ASCII, no spaces, at
// most max bytes; empty means nil.
func appendField(b []byte, v string, max int, nil string) []byte {
	if v == "" {
		v = nil
	}
	n := 0
	for i := 0; i < len(v) && n < max; i++ {
		c := v[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		b = append(b, c)
		n++
	}
	return b
}

// appendParam appends a PARAM-VALUE: valid UTF-8 with '"', '\' and ']'
// escaped by a backslash, control characters replaced by a space.
func appendParam(b []byte, v string) []byte {
	for _, r := range v {
		switch {
		case r == '"' || r == '\\' || r == ']':
			b = append(b, '\\', byte(r))
		case r < 0x20 || r == 0x7f:
			b = append(b, ' ')
		case r == utf8.RuneError:
			b = append(b, "\uFFFD"...)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}

// oneLine replaces line breaks and other control characters by spaces,
// so a detail cannot forge a second message in a line-based collector.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// frame prefixes msg with its length and a space: octet counting (RFC
// 5425 section 4.3, RFC 6587 section 3.4.1).
func frame(msg []byte) []byte {
	b := strconv.AppendInt(make([]byte, 0, len(msg)+6), int64(len(msg)), 10)
	b = append(b, ' ')
	return append(b, msg...)
}
