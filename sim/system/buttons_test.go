package system

import (
	"testing"

	"github.com/totpbox/totpbox/device"
)

func TestButtonLabels(t *testing.T) {
	status := func(view string, index, count int) device.Status {
		return device.Status{View: view, AccountIndex: index, AccountCount: count}
	}
	for _, tc := range []struct {
		name string
		v    buttonView
		want Buttons
	}{
		{"offer", buttonView{Status: status("offer", 0, 3)}, Buttons{Next: "accounts (the offer waits)", OK: "accept: asks for the console's buttons", Back: "reject"}},
		{"offer-entry", buttonView{Status: status("offer-entry", 0, 3)}, Buttons{Next: "the console's sequence", OK: "the console's sequence", Back: "the console's sequence"}},
		{"blank", buttonView{Status: status("blank", 0, 3)}, Buttons{Next: "wake", OK: "wake", Back: "wake"}},
		{"withdrawn message", buttonView{Status: device.Status{View: "message", Message: device.MsgWithdrawn}}, Buttons{Next: "dismiss", OK: "dismiss", Back: "dismiss"}},
		{"no accounts", buttonView{Status: status("message", 0, 0)}, Buttons{}},
		{"code of the first of three", buttonView{Status: status("code", 0, 3)}, Buttons{Next: "next account"}},
		{"code of the last, pairing follows", buttonView{Status: status("code", 2, 3), Pairing: true}, Buttons{Next: "pairing code"}},
		{"code of the last", buttonView{Status: status("code", 2, 3)}, Buttons{Next: "first account"}},
		{"code of the only account", buttonView{Status: status("code", 0, 1)}, Buttons{}},
		{"code of a pending account", buttonView{Status: status("code", 0, 2), Pending: true}, Buttons{Next: "next account", OK: "show QR"}},
		{"revealed code", buttonView{Status: status("code", 0, 2), Hidden: true}, Buttons{Next: "next account", Back: "hide"}},
		{"hidden code", buttonView{Status: status("hidden", 0, 2), Hidden: true}, Buttons{Next: "next account", OK: "reveal"}},
		{"hidden code of a pending account", buttonView{Status: status("hidden", 1, 2), Hidden: true, Pending: true}, Buttons{Next: "first account", OK: "reveal"}},
		{"untrusted clock", buttonView{Status: status("untrusted", 0, 2)}, Buttons{Next: "next account"}},
		{"untrusted clock, pending account", buttonView{Status: status("untrusted", 0, 2), Pending: true}, Buttons{Next: "next account", OK: "show QR"}},
		{"QR code", buttonView{Status: status("qr", 0, 2), Pending: true}, Buttons{OK: "show secret", Back: "show code"}},
		{"secret", buttonView{Status: status("secret", 0, 2), Pending: true}, Buttons{Next: "next page", OK: "show code", Back: "show QR"}},
		{"pairing page", buttonView{Status: status("pairing", 3, 3), Pairing: true}, Buttons{Next: "first account"}},
		{"pairing page, no accounts", buttonView{Status: status("pairing", 0, 0), Pairing: true}, Buttons{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := buttonLabels(tc.v); got != tc.want {
				t.Errorf("buttonLabels(%+v) = %+v, want %+v", tc.v, got, tc.want)
			}
		})
	}
}
