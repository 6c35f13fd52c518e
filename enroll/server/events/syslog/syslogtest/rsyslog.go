// Package syslogtest runs rsyslog, the real collector, for tests of the
// syslog writer: a TLS listener (imtcp with the gtls driver) whose
// messages omfile writes one per line in RFC 5424 format.
package syslogtest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/totpbox/totpbox/internal/testkit"
)

// Rsyslog is an rsyslogd started for one test.
type Rsyslog struct {
	// Addr is the TLS listener, 127.0.0.1:port.
	Addr string
	// Out is the file the received messages go to.
	Out string
	// TLS is a client configuration that trusts the test CA and presents
	// a client certificate it issued (the listener demands one).
	TLS *tls.Config
	// CAFile, ClientCert and ClientKey are the PEM files behind TLS.
	CAFile, ClientCert, ClientKey string

	t    testing.TB
	bin  string
	conf string
	cmd  *exec.Cmd
	log  lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Start starts rsyslogd (Debian packages rsyslog and rsyslog-gnutls) with a
// CA and certificates made for the test; it is stopped when the test ends.
func Start(t testing.TB) *Rsyslog {
	t.Helper()
	bin := testkit.RequireProgram(t, "rsyslogd", "rsyslog")
	gtls := false
	for _, d := range []string{"/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog", "/usr/lib/rsyslog"} {
		if _, err := os.Stat(filepath.Join(d, "lmnsd_gtls.so")); err == nil {
			gtls = true
		}
	}
	testkit.RequirePart(t, !gtls, "rsyslog's TLS driver (Debian package rsyslog-gnutls)")
	dir := t.TempDir()
	ca := testkit.NewCA(t)
	cert, key := ca.Issue("rsyslog", []string{"127.0.0.1", "localhost"}, testkit.CertOptions{})
	ccert, ckey := ca.Issue("totpserver", []string{"totpserver"}, testkit.CertOptions{Client: true})
	addr := testkit.FreeAddr(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	r := &Rsyslog{Addr: "127.0.0.1:" + port, Out: filepath.Join(dir, "out.log"), CAFile: ca.CertFile,
		ClientCert: ccert, ClientKey: ckey, t: t, bin: bin, conf: filepath.Join(dir, "rsyslog.conf")}
	conf := fmt.Sprintf(`global(workDirectory=%q
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile=%q
  defaultNetstreamDriverCertFile=%q
  defaultNetstreamDriverKeyFile=%q)
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")
input(type="imtcp" address="127.0.0.1" port=%q)
action(type="omfile" file=%q template="RSYSLOG_SyslogProtocol23Format")
`, dir, ca.CertFile, cert, key, port, r.Out)
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := tls.LoadX509KeyPair(ccert, ckey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	r.TLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{c}}
	r.Start()
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("rsyslogd said:\n%s", r.log.b.String())
		}
	})
	return r
}

// Start starts rsyslogd again after Stop, on the same address, and waits
// until it listens.
func (r *Rsyslog) Start() {
	r.t.Helper()
	cmd := exec.Command(r.bin, "-n", "-f", r.conf, "-i", r.conf+".pid")
	cmd.Stdout, cmd.Stderr = &r.log, &r.log
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start rsyslogd: %v", err)
	}
	r.cmd = cmd
	testkit.WaitFor(r.t, 10*time.Second, "rsyslogd listening on "+r.Addr, func() bool {
		c, err := tls.Dial("tcp", r.Addr, r.TLS)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// Stop stops rsyslogd (SIGTERM) and waits until it has written what it
// received and exited.
func (r *Rsyslog) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	r.cmd.Wait()
	r.cmd = nil
}

// Lines returns the messages received so far, one RFC 5424 message each.
func (r *Rsyslog) Lines() []string {
	b, err := os.ReadFile(r.Out)
	if err != nil {
		return nil
	}
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
