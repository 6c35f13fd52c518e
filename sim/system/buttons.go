package system

import "github.com/totpbox/totpbox/device"

// Buttons says what each button does on the screen shown now, in a few
// words ("accept", "next account"); empty when the press changes nothing.
type Buttons struct {
	Next string `json:"next"`
	OK   string `json:"ok"`
	Back string `json:"back"`
}

// buttonView is what buttonLabels needs to know about an appliance: the
// loop's status, whether the account shown is pending (its QR code and
// secret may be shown), whether the pairing page follows the accounts,
// and whether codes are hidden until OK.
type buttonView struct {
	Status  device.Status
	Pending bool
	Pairing bool
	Hidden  bool
}

// buttonLabels maps the loop's current view to what each press does, as
// the loop's handle and build in device/screen.go decide it.
func buttonLabels(v buttonView) Buttons {
	st := v.Status
	// next is what NEXT does on an account's page: the next account, the
	// pairing page after the last one, or back to the first.
	next := func() string {
		switch {
		case st.AccountIndex+1 < st.AccountCount:
			return "next account"
		case v.Pairing:
			return "pairing code"
		case st.AccountCount > 1:
			return "first account"
		}
		return ""
	}
	switch st.View {
	case "blank":
		return Buttons{Next: "wake", OK: "wake", Back: "wake"}
	case "offer":
		return Buttons{Next: "accounts (the offer waits)", OK: "accept: asks for the console's buttons", Back: "reject"}
	case "offer-entry":
		return Buttons{Next: "the console's sequence", OK: "the console's sequence", Back: "the console's sequence"}
	case "takeover":
		return Buttons{OK: "take the accounts over", Back: "decline"}
	case "message":
		if st.Message == "Wiped" {
			return Buttons{} // replaced: waiting to be paired again
		}
		if st.Message != "" {
			return Buttons{Next: "dismiss", OK: "dismiss", Back: "dismiss"}
		}
		return Buttons{} // "No accounts"
	case "pairing":
		if st.AccountCount > 0 {
			return Buttons{Next: "first account"}
		}
		return Buttons{}
	case "qr":
		return Buttons{OK: "show secret", Back: "show code"}
	case "secret":
		return Buttons{Next: "next page", OK: "show code", Back: "show QR"}
	case "hidden":
		return Buttons{Next: next(), OK: "reveal"}
	case "untrusted", "code":
		b := Buttons{Next: next()}
		// With hidden codes, OK on the untrusted view may only reveal
		// (nothing to see): the status does not say whether it was.
		if v.Pending && (st.View == "code" || !v.Hidden) {
			b.OK = "show QR"
		}
		if st.View == "code" && v.Hidden {
			b.Back = "hide"
		}
		return b
	}
	return Buttons{}
}
