package clock

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"github.com/totpbox/totpbox/internal/testkit"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	file string // the CA certificate as PEM
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "totpbox test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	file := filepath.Join(t.TempDir(), "ca.pem")
	writePEM(t, file, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, pool: pool, file: file}
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// issue makes a server certificate for name (a DNS name or an IP) valid
// from notBefore to notAfter, and returns it with its PEM files.
func (ca *testCA) issue(t testing.TB, name string, notBefore, notAfter time.Time) (c tls.Certificate, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certFile, keyFile
}

// freeTCPPort returns a TCP port of 127.0.0.1 free a moment ago.
func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startChronyNTS runs chronyd as a stratum-1 NTS server: NTS-KE on a free
// TCP port with a certificate for 127.0.0.1 from ca, NTP (plain and NTS) on
// a free UDP port. It returns "nts://127.0.0.1:keport" and the NTP address.
func startChronyNTS(t testing.TB, ca *testCA) (ntsServer, ntpAddr string) {
	t.Helper()
	_, certFile, keyFile := ca.issue(t, "127.0.0.1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	kePort := freeTCPPort(t)
	ntpAddr = runChronyd(t, "chronyd (NTS)", fmt.Sprintf(
		"local stratum 1\nntsserverkey %s\nntsservercert %s\nntsport %d\nntsprocesses 0\n",
		keyFile, certFile, kePort))
	ntsServer = fmt.Sprintf("nts://127.0.0.1:%d", kePort)
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", kePort))
	return ntsServer, ntpAddr
}

// waitTCP waits until something listens on addr (chronyd starting).
func waitTCP(t testing.TB, addr string) {
	t.Helper()
	for range 200 {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// aheadTimebase is the host's oscillator moved on by a virtual amount, so
// a test can let the clock hold over for minutes without waiting for them.
type aheadTimebase struct {
	Timebase
	ahead atomic.Int64
}

func (a *aheadTimebase) Local() time.Duration {
	return a.Timebase.Local() + time.Duration(a.ahead.Load())
}

// trueNow is the time the clock should read: the host's (which chronyd
// serves) moved on as far as the timebase was.
func (a *aheadTimebase) trueNow() time.Time {
	return time.Now().Add(time.Duration(a.ahead.Load()))
}

// rig is an engine run round by round against real servers.
type rig struct {
	t    testing.TB
	eng  *Engine
	tb   *aheadTimebase
	host *testkit.HostClockWatch // what the host's clock did meanwhile
}

func newRig(t testing.TB, cfg Config, o EngineConfig) *rig {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tb := &aheadTimebase{Timebase: NewTimebase()}
	o.Timebase = tb
	o.Epoch = time.Now().Add(-tb.Local())
	o.Sleep = func(context.Context, time.Duration) error { return nil }
	o.Timeout = time.Second
	return &rig{t: t, eng: NewEngine(cfg, o), tb: tb, host: testkit.WatchHostClock(t)}
}

// rounds runs n rounds, or fewer until done reports true.
func (r *rig) rounds(n int, done func(Reading) bool) Reading {
	r.t.Helper()
	for range n {
		r.eng.Round(context.Background())
		if rd := r.eng.Reading(); done != nil && done(rd) {
			return rd
		}
	}
	return r.eng.Reading()
}

// withinBound fails the test unless the reading is within its bound (and
// slack for the test's own reads) of the true time.
func (r *rig) withinBound(rd Reading, slack time.Duration) {
	r.t.Helper()
	d := rd.Time.Sub(r.tb.trueNow())
	if d.Abs() > rd.Bound+slack {
		skipIfHostClockMoved(r.t, r.host)
		r.t.Fatalf("reading %v is %v off the true time, outside its bound %v (+%v)", rd.Time, d, rd.Bound, slack)
	}
}

func synced(rd Reading) bool { return rd.State == Synced }

// TestNTSAgainstChrony: the clock syncs with a real chronyd over NTS:
// SYNCED, authenticated, its cookies replenished, the NTP port named by
// the key exchange used, and chronyd's replies decrypted and verified.
func TestNTSAgainstChrony(t *testing.T) {
	ca := newTestCA(t)
	srv, ntpAddr := startChronyNTS(t, ca)
	var mu sync.Mutex
	var dialed []string
	r := newRig(t, Config{Servers: []string{srv}, NTSCAFile: ca.file}, EngineConfig{
		NTS: NTSEnv{Roots: ca.pool},
		Dialer: func(_, remote string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, remote)
			mu.Unlock()
			return net.Dial("udp", remote)
		},
	})
	rd := r.rounds(20, synced)
	st := r.eng.Status()
	if rd.State != Synced {
		t.Fatalf("state %v over NTS with chronyd after 20 rounds, want SYNCED: %+v", rd.State, st)
	}
	r.withinBound(rd, 5*time.Millisecond)
	if !rd.Authenticated {
		t.Errorf("reading %+v over NTS alone says not authenticated", rd)
	}
	s := st.Servers[0]
	if !s.NTS || !s.Authenticated || s.AuthFailures != 0 || s.SinceKE < 0 || s.Failures != 0 {
		t.Errorf("server status %+v; want NTS, authenticated, a key exchange, no failures", s)
	}
	if s.Cookies != wantCookiesForTest {
		t.Errorf("cookies left %d, want the jar kept full at %d", s.Cookies, wantCookiesForTest)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, d := range dialed {
		if d != ntpAddr {
			t.Fatalf("NTP query sent to %s, want chronyd's NTP port %s from the key exchange", d, ntpAddr)
		}
	}
}

// wantCookiesForTest is the cookie jar's size (nts.wantCookies).
const wantCookiesForTest = 8

// proxy is an on-path attacker between the clock and an NTP server: it
// forwards each query and changes the reply with mangle (nil: passes it).
type proxy struct {
	pc       net.PacketConn
	mangle   atomic.Pointer[func([]byte)]
	mangleRq atomic.Pointer[func([]byte)] // changes the query instead
}

func newProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{pc: pc}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			up, err := net.Dial("udp", upstream)
			if err != nil {
				continue
			}
			if f := p.mangleRq.Load(); f != nil {
				(*f)(buf[:n])
			}
			up.Write(buf[:n])
			up.SetReadDeadline(time.Now().Add(time.Second))
			reply := make([]byte, 2048)
			m, err := up.Read(reply)
			up.Close()
			if err != nil {
				continue
			}
			if f := p.mangle.Load(); f != nil {
				(*f)(reply[:m])
			}
			pc.WriteTo(reply[:m], from)
		}
	}()
	return p
}

func (p *proxy) set(f func([]byte)) {
	if f == nil {
		p.mangle.Store(nil)
		return
	}
	p.mangle.Store(&f)
}

// dialer sends every NTP query to the proxy, whatever server it is for.
func (p *proxy) dialer() Dialer {
	return func(_, _ string) (net.Conn, error) { return net.Dial("udp", p.pc.LocalAddr().String()) }
}

// shift90 moves the reply's reference, receive and transmit timestamps
// 90 s ahead: the attack that harvests future codes.
func shift90(b []byte) {
	for _, off := range []int{16, 32, 40} {
		binary.BigEndian.PutUint32(b[off:], binary.BigEndian.Uint32(b[off:])+90)
	}
}

// flipByte changes one bit of the transmit timestamp's fraction.
func flipByte(b []byte) { b[45] ^= 0x10 }

// TestNTSRefusesOnPathAttacker puts a proxy between the clock and chronyd
// that shifts replies by +90 s or flips a bit. Over NTS the clock refuses
// every such reply: started under attack it never synchronises; attacked
// after syncing it stays within its bound of the true time and, with
// nothing authentic left, leaves SYNCED. Over plain NTP the same proxy
// moves the clock 90 s: the difference NTS makes.
func TestNTSRefusesOnPathAttacker(t *testing.T) {
	ca := newTestCA(t)
	srv, ntpAddr := startChronyNTS(t, ca)
	for _, atk := range []struct {
		name   string
		mangle func([]byte)
	}{
		{"shift +90s", shift90},
		{"flip a bit", flipByte},
	} {
		t.Run(atk.name+"/NTS from start", func(t *testing.T) {
			p := newProxy(t, ntpAddr)
			p.set(atk.mangle)
			r := newRig(t, Config{Servers: []string{srv}}, EngineConfig{NTS: NTSEnv{Roots: ca.pool}, Dialer: p.dialer()})
			rd := r.rounds(6, nil)
			s := r.eng.Status().Servers[0]
			if rd.State != Unsynced || r.eng.disc.Samples() != 0 {
				t.Fatalf("under attack from start: state %v with %d samples, want UNSYNCED and none", rd.State, r.eng.disc.Samples())
			}
			if s.AuthFailures == 0 || s.Authenticated || !strings.Contains(s.Error, "authentic") {
				t.Fatalf("server status %+v; want refused replies counted", s)
			}
		})
		t.Run(atk.name+"/NTS after sync", func(t *testing.T) {
			p := newProxy(t, ntpAddr)
			r := newRig(t, Config{Servers: []string{srv}}, EngineConfig{NTS: NTSEnv{Roots: ca.pool}, Dialer: p.dialer()})
			if rd := r.rounds(20, synced); rd.State != Synced {
				t.Fatalf("not SYNCED through an honest proxy: %+v", r.eng.Status())
			}
			samples := r.eng.disc.Samples()
			p.set(atk.mangle)
			r.withinBound(r.rounds(6, nil), 5*time.Millisecond)
			if got := r.eng.disc.Samples(); got != samples {
				t.Fatalf("samples %d -> %d under attack: a refused reply steered the clock", samples, got)
			}
			s := r.eng.Status().Servers[0]
			if s.AuthFailures == 0 || s.Authenticated {
				t.Fatalf("server status %+v; want refused replies counted, not authenticated", s)
			}
			// Ten minutes on, nothing authentic has come: no longer SYNCED,
			// still within the bound of the true time.
			r.tb.ahead.Add(int64(10 * time.Minute))
			rd := r.rounds(2, nil)
			if rd.State == Synced {
				t.Fatalf("state SYNCED after 10 min of refused replies")
			}
			r.withinBound(rd, 5*time.Millisecond)
		})
	}
	t.Run("shift +90s/plain NTP", func(t *testing.T) {
		p := newProxy(t, ntpAddr)
		p.set(shift90)
		r := newRig(t, Config{Servers: []string{ntpAddr}}, EngineConfig{Dialer: p.dialer()})
		rd := r.rounds(20, synced)
		if rd.State != Synced {
			t.Fatalf("plain NTP through the proxy: state %v, want SYNCED (on the attacker's time)", rd.State)
		}
		if off := rd.Time.Sub(time.Now()); off < 89*time.Second || off > 91*time.Second {
			t.Fatalf("plain NTP through the +90 s proxy reads %v off the true time, want the attacker's +90 s", off)
		}
		if rd.Authenticated {
			t.Fatalf("reading over plain NTP says authenticated")
		}
	})
}

// TestNTSNAKRekeys: a query whose cookie was changed on the way is
// answered by chronyd with an NTS-NAK; the clock counts it, takes no
// sample, and after the backoff runs a new key exchange and syncs.
func TestNTSNAKRekeys(t *testing.T) {
	ca := newTestCA(t)
	srv, ntpAddr := startChronyNTS(t, ca)
	p := newProxy(t, ntpAddr)
	spoilCookie := func(b []byte) {
		if len(b) > 100 {
			b[100] ^= 0xff // inside the cookie, after the header and unique identifier
		}
	}
	p.mangleRq.Store(&spoilCookie)
	r := newRig(t, Config{Servers: []string{srv}}, EngineConfig{NTS: NTSEnv{Roots: ca.pool}, Dialer: p.dialer()})
	r.rounds(3, nil)
	s := r.eng.Status().Servers[0]
	if s.NAKs == 0 || r.eng.disc.Samples() != 0 || !strings.Contains(s.Error, "NTS-NAK") {
		t.Fatalf("status %+v, %d samples; want NAKs counted, no sample", s, r.eng.disc.Samples())
	}
	p.mangleRq.Store(nil)
	r.tb.ahead.Add(int64(10 * time.Second)) // past the first backoff
	if rd := r.rounds(20, synced); rd.State != Synced {
		t.Fatalf("not SYNCED after the NAKs stopped: %+v", r.eng.Status())
	}
	if st := r.eng.servers[0].nts.Stats(r.eng.Local()); st.KEs != 2 {
		t.Fatalf("%d key exchanges, want 2 (the first, and one after the NAK)", st.KEs)
	}
}
