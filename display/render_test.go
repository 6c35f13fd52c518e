package display

import (
	"bytes"
	"image"
	"math"
	"strings"
	"testing"
	"time"

	"periph.io/x/devices/v3/ssd1306/image1bit"
)

func TestSizeByName(t *testing.T) {
	for name, want := range Sizes {
		if got, err := SizeByName(name); err != nil || got != want {
			t.Errorf("SizeByName(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	_, err := SizeByName("ssd1306-64x48")
	if err == nil {
		t.Fatal("SizeByName(ssd1306-64x48) succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "ssd1306-64x48") {
		t.Errorf("SizeByName error %q: want one line naming the panel", msg)
	}
	for name := range Sizes {
		if !strings.Contains(msg, name) {
			t.Errorf("SizeByName error %q does not list %q", msg, name)
		}
	}
}

func TestParseView(t *testing.T) {
	names := []string{"code", "untrusted", "hidden", "offer", "qr", "secret", "pairing", "message", "offer-entry", "takeover"}
	if len(Views()) != len(names) {
		t.Fatalf("Views() = %v, want %d views", Views(), len(names))
	}
	for i, name := range names {
		v, err := ParseView(name)
		if err != nil || v != View(i) || v.String() != name {
			t.Errorf("ParseView(%q) = %v (%d), %v; want %d", name, v, int(v), err, i)
		}
	}
	if _, err := ParseView("QR"); err == nil || !strings.Contains(err.Error(), "pairing") {
		t.Errorf("ParseView(QR) error = %v, want one listing the views", err)
	}
	if got := View(42).String(); got != "View(42)" {
		t.Errorf("View(42).String() = %q", got)
	}
}

func same(a, b *image1bit.VerticalLSB) bool {
	return a.Rect == b.Rect && bytes.Equal(a.Pix, b.Pix)
}

func codeScreen() Screen {
	return Screen{View: ViewCode, Issuer: "GitHub", Label: "alice", Code: "492039", NextCode: "118354",
		Remaining: 3 * time.Second, Period: 30 * time.Second, Index: 1, Count: 3, Link: LinkUp}
}

// TestNoCodeUnlessTrustedAndShown checks that the code's digits change the
// frame only where a code may be shown.
func TestNoCodeUnlessTrustedAndShown(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Screen)
		shown bool
	}{
		{"code synced", func(s *Screen) {}, true},
		{"code holdover", func(s *Screen) { s.Time = TimeHoldover }, true},
		{"code untrusted", func(s *Screen) { s.Time = TimeUntrusted }, false},
		{"code unsynced", func(s *Screen) { s.Time = TimeUnsynced }, false},
		{"code unknown time state", func(s *Screen) { s.Time = TimeState(9) }, false},
		{"untrusted view", func(s *Screen) { s.View = ViewUntrusted }, false},
		{"hidden view", func(s *Screen) { s.View = ViewHidden }, false},
	}
	for _, panel := range SizeNames() {
		for _, tt := range tests {
			t.Run(panel+"/"+tt.name, func(t *testing.T) {
				with := codeScreen()
				tt.edit(&with)
				without := with
				without.Code, without.NextCode = "", ""
				differ := !same(Render(with, Sizes[panel]), Render(without, Sizes[panel]))
				if differ != tt.shown {
					t.Errorf("the code changes the frame: %v, want %v", differ, tt.shown)
				}
			})
		}
	}
}

// TestClamping checks that out-of-range numbers draw as the nearest valid
// value.
func TestClamping(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	tests := []struct {
		name      string
		odd, want func(*Screen)
	}{
		{"remaining over period", func(s *Screen) { s.Remaining = time.Hour }, func(s *Screen) { s.Remaining = s.Period }},
		{"negative remaining", func(s *Screen) { s.Remaining = -time.Second }, func(s *Screen) { s.Remaining = 0 }},
		{"zero period means 30 s", func(s *Screen) { s.Period = 0; s.Remaining = 15 * time.Second }, func(s *Screen) { s.Period = 30 * time.Second; s.Remaining = 15 * time.Second }},
		{"index over count", func(s *Screen) { s.Index = 99 }, func(s *Screen) { s.Index = s.Count - 1 }},
		{"negative index", func(s *Screen) { s.Index = -4 }, func(s *Screen) { s.Index = 0 }},
		{"page over pages", func(s *Screen) { s.View, s.Secret, s.Page = ViewSecret, secret, 1000 }, func(s *Screen) {
			s.View, s.Secret = ViewSecret, secret
			s.Page = SecretPages(secret, image.Pt(128, 32)) - 1
		}},
		{"negative page", func(s *Screen) { s.View, s.Secret, s.Page = ViewSecret, secret, -3 }, func(s *Screen) { s.View, s.Secret = ViewSecret, secret }},
	}
	size := Sizes["ssd1306-128x32"]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			odd, want := codeScreen(), codeScreen()
			odd.NextCode, want.NextCode = "", ""
			tt.odd(&odd)
			tt.want(&want)
			if !same(Render(odd, size), Render(want, size)) {
				t.Errorf("Render(%s) differs from the clamped screen", tt.name)
			}
		})
	}
}

func TestSecretPages(t *testing.T) {
	secret32 := "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	secret103 := strings.Repeat("JBSWY3DPEHPK3PXP", 7)[:103] // a 512-bit key
	tests := []struct {
		panel  string
		secret string
		want   int
	}{
		{"ssd1306-128x32", "", 1},
		{"ssd1306-128x32", secret32, 1},
		{"ssd1306-128x32", secret32 + "ABCDEFGH", 2},
		{"ssd1306-128x32", secret103, 3},
		{"ssd1306-128x64", secret32, 1},
		{"ssd1306-128x64", secret103, 3},
		{"epd-250x122", secret103, 2},
		{"epd-296x128", secret103, 2},
	}
	for _, tt := range tests {
		if got := SecretPages(tt.secret, Sizes[tt.panel]); got != tt.want {
			t.Errorf("SecretPages(%d chars, %s) = %d, want %d", len(tt.secret), tt.panel, got, tt.want)
		}
	}
	if got := SecretPages(secret32, image.Point{}); got != 1 {
		t.Errorf("SecretPages on an empty panel = %d, want 1", got)
	}
	// Every page of a long secret differs from the others.
	for _, panel := range SizeNames() {
		size := Sizes[panel]
		n := SecretPages(secret103, size)
		seen := map[string]int{}
		for p := range n {
			img := Render(Screen{View: ViewSecret, Secret: secret103, Page: p}, size)
			if q, dup := seen[string(img.Pix)]; dup {
				t.Errorf("%s: pages %d and %d of the secret look the same", panel, q, p)
			}
			seen[string(img.Pix)] = p
		}
	}
}

func TestSecretGroups(t *testing.T) {
	got := strings.Join(secretGroups(" jbsw y3dp-EHPK 3p====\n"), "|")
	if want := "JBSW|Y3DP|EHPK|3P"; got != want {
		t.Errorf("secretGroups = %q, want %q", got, want)
	}
}

func TestGroupCode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"492039", "492 039"},
		{"12345678", "1234 5678"},
		{"1234567", "1234 567"},
		{"1234", "1234"},
		{"", ""},
		{"12 34 56", "12 34 56"},
	}
	for _, tt := range tests {
		if got := string(groupCode([]rune(tt.in))); got != tt.want {
			t.Errorf("groupCode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		face     string
		in, want string
	}{
		{"7x13", "Zoë Ångström", "Zoe Angstrom"},
		{"8x16", "Zoë Ångström", "Zoë Ångström"},
		{"7x13", "e\u0301clair", "eclair"},
		{"7x13", "  tab\tand\n\nnewline  ", "tab and newline"},
		{"7x13", "a\u202eb\u200dc\u0000d", "abcd"},
		{"7x13", "東京", "??"},
		{"7x13", "ﬁle", "file"},
		{"7x13", "ＡＢＣ", "ABC"},
		{"7x13", "Łódź — café", "Lodz - cafe"},
		{"7x13", "bad \xff byte", "bad ? byte"},
		{"7x13", "🔑 key", "? key"},
		{"7x13", "\u0301\u0301", ""},
	}
	faces := map[string]*face{"7x13": face7x13(), "8x16": face8x16()}
	for _, tt := range tests {
		if got := string(faces[tt.face].clean(tt.in)); got != tt.want {
			t.Errorf("clean(%s, %q) = %q, want %q", tt.face, tt.in, got, tt.want)
		}
	}
}

func TestFitAndWrap(t *testing.T) {
	f := face7x13()
	rs := f.clean("alice@example.com")
	for w := 0; w <= f.width(rs)+7; w++ {
		got := f.fit(rs, w)
		if f.width(got) > w && w >= f.glyph(ellipsis).adv {
			t.Errorf("fit(%d px) = %q, %d px wide", w, string(got), f.width(got))
		}
		if full := f.width(rs) <= w; full != (string(got) == string(rs)) {
			t.Errorf("fit(%d px) = %q; shortened: %v, want %v", w, string(got), !full, full)
		}
		if string(got) != string(rs) && len(got) > 0 && got[len(got)-1] != ellipsis {
			t.Errorf("fit(%d px) = %q, want an ellipsis", w, string(got))
		}
	}
	lines := f.wrap(f.clean("Enter the PIN in totpctl to unlock the accounts."), 126, 3)
	var got []string
	for _, l := range lines {
		got = append(got, string(l))
	}
	if want := "Enter the PIN in|totpctl to unlock|the accounts."; strings.Join(got, "|") != want {
		t.Errorf("wrap = %q, want %q", strings.Join(got, "|"), want)
	}
	lines = f.wrap(f.clean("supercalifragilisticexpialidocious and more"), 70, 2)
	if len(lines) != 2 || f.width(lines[0]) > 70 || lines[1][len(lines[1])-1] != ellipsis {
		t.Errorf("wrap of a long word = %q", lines)
	}
}

// TestUnicodeLabelsDrawn checks that labels in scripts the fonts lack
// still mark the frame (replaced, not dropped).
func TestUnicodeLabelsDrawn(t *testing.T) {
	for _, panel := range SizeNames() {
		s := codeScreen()
		s.Issuer, s.Label, s.NextCode = "", "", ""
		blank := Render(s, Sizes[panel])
		s.Label = "東京 🔑"
		if same(Render(s, Sizes[panel]), blank) {
			t.Errorf("%s: a label of CJK and emoji left no mark", panel)
		}
	}
}

func TestLabelShortening(t *testing.T) {
	tests := []struct {
		issuer, label string
		w             int
		want          string
	}{
		{"GitHub", "alice", 200, "GitHub: alice"},
		{"GitHub", "GitHub:alice", 200, "GitHub: alice"},
		{"GitHub", "alice@example.com", 200, "GitHub: alice@example.com"},
		{"GitHub", "alice@example.com", 91, "GitHub: alice"},
		{"GitHub", "alice@example.com", 80, "GitHub: al…"},
		{"", "alice", 200, "alice"},
		{"GitHub", "", 200, "GitHub"},
	}
	for _, tt := range tests {
		r := &renderer{s: Screen{Issuer: tt.issuer, Label: tt.label}}
		if got := string(r.label(face7x13(), tt.w, true)); got != tt.want {
			t.Errorf("label(%q, %q, %d px) = %q, want %q", tt.issuer, tt.label, tt.w, got, tt.want)
		}
	}
}

// TestLabelNamesTheUser: an account placed for a user names the user after
// its own name, within the width: the account's name is shortened first,
// then the user's address is cut to its local part, then shortened.
func TestLabelNamesTheUser(t *testing.T) {
	f := face7x13()
	tests := []struct {
		issuer, label, user string
		w                   int
		want                string
	}{
		{"totpbox", "Front desk", "carol", 300, "totpbox: Front desk (carol)"},
		{"totpbox", "Front desk", "carol", 150, "totpbox: Fro… (carol)"},
		{"totpbox", "Front desk", "alice.with.a.rather.long.name@example.com", 300, "totpbox: Front desk (alice.with.a.rather…"},
		{"totpbox", "Front desk", "alice.with.a.rather.long.name@example.com", 120, "totpbox… (alice.…"},
		{"", "", "carol", 120, "(carol)"},
	}
	for _, tt := range tests {
		r := &renderer{s: Screen{Issuer: tt.issuer, Label: tt.label, User: tt.user}}
		got := r.label(f, tt.w, true)
		if string(got) != tt.want {
			t.Errorf("label(%q, %q, user %q, %d px) = %q, want %q", tt.issuer, tt.label, tt.user, tt.w, string(got), tt.want)
		}
		if f.width(got) > tt.w {
			t.Errorf("label(%q, user %q) is %d px wide, over %d", tt.label, tt.user, f.width(got), tt.w)
		}
	}
}

// oddScreens are screens with empty, enormous and hostile fields.
func oddScreens() []Screen {
	long := strings.Repeat("Ω≈ç√∫˜µ≤≥÷ 🏳️‍🌈 ‮evil‬ \u0000\x01 ", 40)
	// huge is 1<<62 on 64-bit machines and 1<<30 on 32-bit ones, less one:
	// far out of range, with room for the +1 a view may add.
	const huge = math.MaxInt >> 1
	var out []Screen
	for _, v := range append(Views(), View(-1), View(99)) {
		out = append(out,
			Screen{View: v},
			Screen{View: v, Issuer: long, Label: long, Code: long, NextCode: long, Reason: long, URI: long,
				Secret: long, User: long, DeviceName: long, Server: long, PairingCode: long, Title: long, Message: long,
				Remaining: -time.Hour, Period: -time.Second, Index: -huge - 1, Count: huge, Page: huge,
				Time: TimeState(-7), Link: Link(42)},
			Screen{View: v, Code: "\xff\xfe\xfd", Secret: "\u0301\u0301", URI: "otpauth://totp/\u0000", Page: -huge - 1,
				Count: -3, Remaining: 1 << 62, Period: 1, Paper: true, Time: TimeUnsynced, Link: LinkDown},
			Screen{View: v, Code: strings.Repeat("9", 500), PairingCode: strings.Repeat("W", 300), Secret: strings.Repeat("A", 5000),
				URI: strings.Repeat("otpauth", 600), Time: TimeHoldover})
	}
	return out
}

func TestRenderOddInput(t *testing.T) {
	sizes := []image.Point{{0, 0}, {-10, 5}, {1, 1}, {15, 7}, {16, 8}, {24, 200}, {200, 9}, {64, 48}, {5000, 3}}
	for _, s := range Sizes {
		sizes = append(sizes, s)
	}
	for _, size := range sizes {
		for _, s := range oddScreens() {
			img := Render(s, size)
			want := image.Rect(0, 0, min(max(size.X, 0), maxSide), min(max(size.Y, 0), maxSide))
			if img.Bounds() != want {
				t.Errorf("Render(%v, %v) bounds = %v, want %v", s.View, size, img.Bounds(), want)
			}
		}
	}
}

func FuzzRender(f *testing.F) {
	f.Add(0, "GitHub", "alice@example.com", "492039", int64(17e9), 1, 5, 0, "")
	f.Add(4, "東京", "Zoë", "", int64(-1), -1, 0, 3, "otpauth://totp/a?secret=AAAA")
	f.Add(5, "", "", "", int64(0), 0, 0, 0, "jbsw y3dp====")
	f.Add(99, "\u202e", "\x00", "1234567890123", int64(1)<<62, 1<<30, 1<<30, -2, "\xff")
	f.Fuzz(func(t *testing.T, view int, issuer, label, code string, remaining int64, index, count, timeState int, extra string) {
		s := Screen{View: View(view % 10), Issuer: issuer, Label: label, Code: code, NextCode: code,
			Remaining: time.Duration(remaining), Period: 30 * time.Second, Index: index, Count: count,
			Time: TimeState(timeState), Link: Link(index % 4), Reason: extra, URI: extra, Secret: extra,
			Page: index, User: issuer, DeviceName: label, Server: extra, PairingCode: code, Title: issuer, Message: extra}
		for _, size := range Sizes {
			if img := Render(s, size); img.Bounds().Size() != size {
				t.Fatalf("Render bounds = %v, want %v", img.Bounds(), size)
			}
		}
	})
}

func TestPaperInverts(t *testing.T) {
	for _, panel := range SizeNames() {
		size := Sizes[panel]
		s := codeScreen()
		oled := Render(s, size)
		s.Paper = true
		paper := Render(s, size)
		for y := range size.Y {
			for x := range size.X {
				if oled.BitAt(x, y) == paper.BitAt(x, y) {
					t.Fatalf("%s: pixel %d,%d is the same on OLED and paper", panel, x, y)
				}
			}
		}
	}
}
