package appliance

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

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

// parseHeldRequest decodes and checks the body of POST {id}/held: at most
// proto.MaxHeld MFA device ids of 1 to MaxDeviceIDLen bytes, duplicates
// dropped.
func parseHeldRequest(body []byte) ([]string, error) {
	var req proto.HeldRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, errors.New("held accounts are not valid JSON")
	}
	if len(req.DeviceIDs) > proto.MaxHeld {
		return nil, fmt.Errorf("more than %d device ids", proto.MaxHeld)
	}
	ids := make([]string, 0, len(req.DeviceIDs))
	for _, id := range req.DeviceIDs {
		if id == "" || len(id) > MaxDeviceIDLen {
			return nil, fmt.Errorf("device id must be 1 to %d bytes", MaxDeviceIDLen)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
