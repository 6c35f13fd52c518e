package system

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/totpbox/totpbox/enroll/server/browsertest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// TestForgetPairingWaitsForAPerson: the simulator pairs a new appliance
// itself once; after Forget pairing the appliance shows a pairing code and
// is not paired again behind the admin's back, so the code can be entered
// on the console; a later run leaves it to a person too.
func TestForgetPairingWaitsForAPerson(t *testing.T) {
	s, sim := startSystem(t, Config{})
	testkit.WaitFor(t, 10*time.Second, "the simulator to pair its appliance", func() bool {
		st := getState(t, sim.URL+"/sim/state")
		return st.Sync != nil && st.Sync.Paired && st.Sync.Name == "Simulated appliance 0"
	})
	if st := getState(t, sim.URL+"/sim/state"); st.Name != "Simulated appliance 0" {
		t.Errorf("/sim/state names the appliance %q, want the console's name", st.Name)
	}
	testkit.WaitFor(t, 10*time.Second, "the automatic pairing to end", func() bool { return s.autoPairing.Load() == 0 })
	if _, err := os.Stat(filepath.Join(s.cfg.DataDir, "appliance-0", autoPairedFile)); err != nil {
		t.Fatalf("the automatic pairing is not recorded: %v", err)
	}

	if err := s.ForgetPairing(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	var code string
	testkit.WaitFor(t, 10*time.Second, "the appliance to show a pairing code", func() bool {
		st := getState(t, sim.URL+"/sim/state")
		if st.Sync != nil && !st.Sync.Paired {
			code = st.Sync.PairingCode
		}
		return code != ""
	})
	if n := s.autoPairing.Load(); n != 0 {
		t.Fatalf("%d automatic pairings running after Forget pairing, want none", n)
	}
	if st := getState(t, sim.URL+"/sim/state"); st.Sync.Paired || st.AccountCount != 3 {
		t.Fatalf("after Forget pairing: paired %v with %d accounts; want unpaired, the 3 accounts kept", st.Sync.Paired, st.AccountCount)
	}
	// A person enters the code, as on the console's Appliances page.
	if _, err := s.server.srv.Appliances().Pair(context.Background(), code, "Front desk"); err != nil {
		t.Fatalf("pairing with the code the appliance shows: %v", err)
	}
	testkit.WaitFor(t, 10*time.Second, "the appliance to learn its pairing", func() bool {
		st := getState(t, sim.URL+"/sim/state")
		return st.Sync.Paired && st.Sync.Name == "Front desk"
	})
	if err := s.ForgetPairing(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the appliance to show a pairing code", func() bool {
		st := getState(t, sim.URL+"/sim/state")
		return !st.Sync.Paired && st.Sync.PairingCode != ""
	})
	if err := s.ForgetPairing(context.Background(), 0); err == nil || !strings.Contains(err.Error(), "not paired") {
		t.Errorf("ForgetPairing of an unpaired appliance = %v, want an error saying it is not paired", err)
	}
}

// TestManualPairingStartsUnpaired: with NoAutoPair (totpsim
// --manual-pairing) a new appliance waits with its pairing code.
func TestManualPairingStartsUnpaired(t *testing.T) {
	s, sim := startSystem(t, Config{NoAutoPair: true})
	testkit.WaitFor(t, 10*time.Second, "the appliance to show a pairing code", func() bool {
		st := getState(t, sim.URL+"/sim/state")
		return st.Sync != nil && st.Sync.PairingCode != ""
	})
	if st := getState(t, sim.URL+"/sim/state"); st.Sync.Paired || s.autoPairing.Load() != 0 {
		t.Fatalf("with manual pairing: paired %v, %d automatic pairings; want neither", st.Sync.Paired, s.autoPairing.Load())
	}
}

// TestBrowserPageButtons: in chromium, the page labels each button with
// what it does on the screen shown; pressing OK through the page reveals
// the hidden code, which changes the panel's image and the labels.
func TestBrowserPageButtons(t *testing.T) {
	b := browsertest.Start(t, 60*time.Second)
	_, sim := startSystem(t, Config{NoServer: true, Hidden: true, RevealFor: time.Hour})
	testkit.WaitFor(t, 10*time.Second, "the clock to sync and the code to be hidden", func() bool {
		return getState(t, sim.URL+"/sim/state").View == "hidden"
	})
	labels := func() string {
		v, _ := b.Eval("labels", `Array.from(document.querySelectorAll('.app[data-n="0"] form.buttons button')).map(function(b){return b.innerText.replace(/\s+/g,' ')}).join(' | ')`).(string)
		return v
	}
	// The panel's pixels as the page shows them.
	panel := func() string {
		v, _ := b.Eval("panel image", `(function(){var i=document.getElementById('d0');var c=document.createElement('canvas');c.width=i.naturalWidth;c.height=i.naturalHeight;c.getContext('2d').drawImage(i,0,0);return c.toDataURL()})()`).(string)
		return v
	}
	b.Run("open the page",
		chromedp.Navigate(sim.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("d0")),
		chromedp.Poll[chromedp.Void](`document.getElementById('d0').complete && document.getElementById('d0').naturalWidth > 0`),
	)
	if got, want := labels(), "NEXT next account | OK reveal | BACK —"; got != want {
		t.Fatalf("buttons on the hidden code: %q, want %q", got, want)
	}
	if h := b.Eval("heading", `document.querySelector('.app h2').innerText`); h != "Simulated appliance 0" {
		t.Errorf("appliance heading %q, want the console's name", h)
	}
	if r := b.Eval("rendering", `getComputedStyle(document.getElementById('d0')).imageRendering`); r != "pixelated" {
		t.Errorf("panel image-rendering %q, want pixelated", r)
	}
	if w := b.Eval("width", `document.getElementById('d0').naturalWidth`); w != float64(640) {
		t.Errorf("panel image %v px wide, want 640 (128 px scaled 5×)", w)
	}
	table := b.Text("state table", "table.state")
	for _, want := range []string{"Code hidden until OK — ACME Cloud (1 of 3)", "In sync, within ±", "Standalone", "GitHub", "Kiosk VPN"} {
		if !strings.Contains(table, want) {
			t.Errorf("state table %q lacks %q", table, want)
		}
	}
	before := panel()
	b.Run("press OK", chromedp.Click(chromedp.CSS(`.app[data-n="0"] form.buttons button[value="ok"]`)))
	b.Run("labels follow the view", chromedp.Poll[chromedp.Void](`document.querySelector('.app[data-n="0"] button[value="back"]').dataset.does === "hide"`))
	if got, want := labels(), "NEXT next account | OK — | BACK hide"; got != want {
		t.Errorf("buttons on the revealed code: %q, want %q", got, want)
	}
	if st := getState(t, sim.URL+"/sim/state"); st.View != "code" || st.Presses != 1 {
		t.Fatalf("after OK through the page: view %q after %d presses, want code after 1", st.View, st.Presses)
	}
	var after string
	testkit.WaitFor(t, 10*time.Second, "the page's panel image to change", func() bool {
		after = panel()
		return after != before && after != "data:,"
	})
}
