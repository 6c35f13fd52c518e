package appliance

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/totpbox/totpbox/enroll/proto"
)

// FuzzDecodeRequest runs the appliance API's JSON request decoders (the
// pairing request and the ack) on any body: they never panic; they refuse
// with one short line that does not quote the body; and what they accept
// keeps their limits (a 32-byte box key, a short version, at most MaxAcks
// acks) and survives encoding again unchanged.
func FuzzDecodeRequest(f *testing.F) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, proto.BoxKeySize))
	for _, s := range []string{
		`{"box_key":"` + key + `","version":"1.2.3"}`,
		`{"box_key":"` + key + `","version":"` + strings.Repeat("v", 65) + `"}`,
		`{"box_key":"AAAA","version":"1"}`,
		`{"box_key":"` + key + `","version":"1.0\u202egnp.exe"}`,
		`{"box_key":"` + key + `","version":"1.0\u001b[31m"}`,
		`{"box_key":"not base64!"}`,
		`{"acks":[{"rev":1,"result":"applied"},{"rev":2,"result":"accepted"}]}`,
		`{"acks":[{"rev":"1"}]}`,
		`{"acks":null}`,
		`{"acks":[` + strings.Repeat(`{"rev":1,"result":"applied"},`, MaxAcks) + `{"rev":2}]}`,
		`{"box_key":`, `{"a":1}{"b":2}`, `[]`, `null`, `""`, "{}   \n", "\xff",
	} {
		f.Add(byte(0), s)
		f.Add(byte(1), s)
	}
	f.Fuzz(func(t *testing.T, which byte, body string) {
		var (
			got any
			err error
		)
		switch which % 2 {
		case 0:
			var req proto.PairingRequest
			req, err = parsePairingRequest([]byte(body))
			if err == nil {
				if len(req.BoxKey) != proto.BoxKeySize || len(req.Version) > proto.MaxVersion {
					t.Fatalf("parsePairingRequest(%q) accepted box key of %d bytes, version of %d", body, len(req.BoxKey), len(req.Version))
				}
				for _, r := range req.Version {
					if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
						t.Fatalf("parsePairingRequest(%q) accepted version %q holding %U", body, req.Version, r)
					}
				}
				got = req
			}
		case 1:
			var req proto.AckRequest
			req, err = parseAckRequest([]byte(body))
			if err == nil {
				if len(req.Acks) > MaxAcks {
					t.Fatalf("parseAckRequest(%q) accepted %d acks", body, len(req.Acks))
				}
				got = req
			}
		}
		if err != nil {
			msg := err.Error()
			if msg == "" || len(msg) > 80 || strings.Contains(msg, "\n") {
				t.Fatalf("decoder %d on %q: error %q, want one short line", which%2, body, msg)
			}
			if len(body) >= 8 && strings.Contains(msg, body) {
				t.Fatalf("decoder %d: error %q quotes the body", which%2, msg)
			}
			return
		}
		// Accepted: encoding it and decoding again gives the same request.
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var again any
		switch which % 2 {
		case 0:
			again, err = parsePairingRequest(b)
		case 1:
			again, err = parseAckRequest(b)
		}
		if err != nil || fmt.Sprint(again) != fmt.Sprint(got) {
			t.Fatalf("%q decoded to %+v; encoded again %s decodes to %+v, %v", body, got, b, again, err)
		}
	})
}
