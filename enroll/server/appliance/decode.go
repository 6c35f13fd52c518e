package appliance

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/totpbox/totpbox/enroll/proto"
)

// maxVersion is the longest software version a pairing request may carry.
const maxVersion = 64

// parsePairingRequest decodes and checks the body of POST pairing. Its
// error is one line, fit for the 400 answer, and never quotes the body.
func parsePairingRequest(body []byte) (proto.PairingRequest, error) {
	var req proto.PairingRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return req, errors.New("pairing request is not valid JSON")
	}
	if len(req.BoxKey) != proto.BoxKeySize {
		return req, fmt.Errorf("box_key must be %d bytes", proto.BoxKeySize)
	}
	if len(req.Version) > maxVersion {
		return req, fmt.Errorf("version is over %d bytes", maxVersion)
	}
	// The version is shown in the console and the audit log: no control or
	// invisible format characters (bidi overrides) that would make it read
	// as something else.
	if i := strings.IndexFunc(req.Version, func(r rune) bool {
		return r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
	}); i >= 0 {
		return req, errors.New("version holds a control, format or invalid character")
	}
	return req, nil
}

// parseAckRequest decodes and checks the body of POST {id}/ack; whether
// each ack fits its change is up to the store. Its error is one line, fit
// for the 400 answer, and never quotes the body.
func parseAckRequest(body []byte) (proto.AckRequest, error) {
	var req proto.AckRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return req, errors.New("ack is not valid JSON")
	}
	if len(req.Acks) > MaxAcks {
		return req, fmt.Errorf("more than %d acks", MaxAcks)
	}
	return req, nil
}
