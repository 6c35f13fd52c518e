package spiport

import (
	"errors"
	"strings"
	"testing"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

func spec(got *[][]byte) Spec {
	return Spec{
		Prefix: "panel", Name: "p0", Modes: []spi.Mode{spi.Mode0}, ModeNames: "Mode0",
		MaxSpeed: 10 * physic.MegaHertz, NoHalfDuplex: true, Duplex: conn.Full, ReadHint: "; equal lengths",
		Transfer: func(w []byte) error {
			if len(w) > 0 && w[0] == 0xff {
				return errors.New("unplugged")
			}
			*got = append(*got, append([]byte(nil), w...))
			return nil
		},
	}
}

// TestConnect: what a port refuses to connect, each with a one-line error
// naming the panel and what was wrong.
func TestConnect(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    physic.Frequency
		mode spi.Mode
		bits int
		err  string
	}{
		{"accepted", physic.MegaHertz, spi.Mode0, 8, ""},
		{"9 bits", physic.MegaHertz, spi.Mode0, 9, "panel: p0: 9 bits per word not supported; allowed: 8 (4-wire SPI)"},
		{"mode 3", physic.MegaHertz, spi.Mode3, 8, "panel: p0: Mode3 not supported; allowed: Mode0"},
		{"half duplex", physic.MegaHertz, spi.Mode0 | spi.HalfDuplex, 8, "panel: p0: half duplex not supported"},
		{"too fast", 20 * physic.MegaHertz, spi.Mode0, 8, "panel: p0: 20MHz too fast; allowed: up to 10MHz"},
	} {
		var got [][]byte
		_, err := New(spec(&got)).Connect(tc.f, tc.mode, tc.bits)
		if msg := ""; err != nil {
			msg = err.Error()
			if msg != tc.err {
				t.Errorf("%s: %q, want %q", tc.name, msg, tc.err)
			}
		} else if tc.err != "" {
			t.Errorf("%s: connected, want %q", tc.name, tc.err)
		}
	}
}

// TestTransfers: each transfer and packet reaches the decoder, reads are
// zeros, a second Connect and a transfer after Close are refused.
func TestTransfers(t *testing.T) {
	var got [][]byte
	p := New(spec(&got))
	c, err := p.Connect(physic.MegaHertz, spi.Mode0, 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Connect(physic.MegaHertz, spi.Mode0, 8); err == nil || !strings.Contains(err.Error(), "Connect called twice") {
		t.Errorf("second Connect = %v", err)
	}
	r := []byte{9, 9}
	if err := c.Tx([]byte{1, 2}, r); err != nil || r[0] != 0 || r[1] != 0 {
		t.Fatalf("Tx = %v, read %v", err, r)
	}
	if err := c.Tx([]byte{1, 2}, make([]byte, 1)); err == nil || err.Error() != "panel: p0: read buffer of 1 bytes for 2 bytes written; equal lengths" {
		t.Errorf("short read buffer: %v", err)
	}
	if err := c.TxPackets([]spi.Packet{{W: []byte{3}}, {W: []byte{4, 5}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.TxPackets([]spi.Packet{{W: []byte{6}, BitsPerWord: 9}}); err == nil {
		t.Error("a 9-bit packet was sent")
	}
	if err := c.Tx([]byte{0xff}, nil); err == nil || err.Error() != "unplugged" {
		t.Errorf("the decoder's error = %v", err)
	}
	if len(got) != 3 || string(got[2]) != "\x04\x05" {
		t.Errorf("decoded %v, want [1 2] [3] [4 5]", got)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Tx([]byte{7}, nil); err == nil || err.Error() != "panel: p0: port closed" {
		t.Errorf("Tx after Close = %v", err)
	}
	if err := p.Close(); err == nil {
		t.Error("a second Close succeeded")
	}
}
