package appliance

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/totpbox/totpbox/enroll/proto"
)

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
	if err := proto.CheckVersion(req.Version); err != nil {
		return req, err
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
