// Package ntpsim provides NTP servers for tests, the simulator and the
// clock bench: simulated servers reached through beevik/ntp's Dialer hook,
// living in virtual time with configurable delay, jitter, spread, queueing
// spikes, asymmetry, loss, outages, fixed errors and kiss-of-death; and a
// real UDP server on 127.0.0.1 serving the host's time plus an offset.
package ntpsim

import (
	"encoding/binary"
	"errors"
	"time"
)

const packetSize = 48

var ntpEpoch = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

// toNTP encodes t as a 64-bit NTP timestamp (era wraps modulo 2^32 s).
func toNTP(t time.Time) uint64 {
	d := t.Sub(ntpEpoch)
	sec := uint64(d / time.Second)
	frac := uint64(d%time.Second) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

// toShort encodes d as NTP's 32-bit short format (16.16 seconds).
func toShort(d time.Duration) uint32 {
	if d < 0 {
		d = 0
	}
	return uint32(uint64(d) << 16 / uint64(time.Second))
}

// replyParams are the parts of a reply that do not come from the request.
type replyParams struct {
	stratum        uint8
	kiss           string // non-empty: a kiss-of-death with this code
	rootDelay      time.Duration
	rootDispersion time.Duration
	recv, xmit     time.Time // server's clock at receipt and transmission
}

var errNotClientRequest = errors.New("ntpsim: not an NTP client request")

// reply builds the server's answer to req.
func reply(req []byte, p replyParams) ([]byte, error) {
	if len(req) < packetSize || req[0]&7 != 3 {
		return nil, errNotClientRequest
	}
	version := req[0] >> 3 & 7
	if version < 3 || version > 4 {
		version = 4
	}
	b := make([]byte, packetSize)
	leap := byte(0)
	stratum := p.stratum
	refID := []byte("SIM\x00")
	if p.kiss != "" {
		leap, stratum = 3, 0
		refID = []byte((p.kiss + "    ")[:4])
	}
	b[0] = leap<<6 | version<<3 | 4
	b[1] = stratum
	b[2] = req[2] // poll
	b[3] = 0xec   // precision 2^-20 s
	binary.BigEndian.PutUint32(b[4:], toShort(p.rootDelay))
	binary.BigEndian.PutUint32(b[8:], toShort(p.rootDispersion))
	copy(b[12:16], refID)
	binary.BigEndian.PutUint64(b[16:], toNTP(p.recv.Add(-8*time.Second).Truncate(time.Second)))
	copy(b[24:32], req[40:48]) // origin: the client's transmit field
	binary.BigEndian.PutUint64(b[32:], toNTP(p.recv))
	binary.BigEndian.PutUint64(b[40:], toNTP(p.xmit))
	return b, nil
}
