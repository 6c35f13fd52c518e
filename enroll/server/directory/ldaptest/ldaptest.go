// Package ldaptest starts a real OpenLDAP server (slapd) for tests, on a
// loopback port with a temporary configuration, and seeds it with
// ldapadd and ldapmodify as an operator would. Tests that use it skip on a
// machine without slapd and fail in CI, which installs it.
package ldaptest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/internal/testkit"
)

// Suffix, AdminDN and AdminPassword are the test directory's root.
const (
	Suffix        = "dc=example,dc=org"
	AdminDN       = "cn=admin," + Suffix
	AdminPassword = "admin-secret"
)

// adSchema stands in for the two attributes of Active Directory the sync
// reads: userAccountControl (its bit 2 disables an account) and
// sAMAccountName. slapd is not AD; this small test schema lets the same
// entries carry them, on an auxiliary class. The OIDs are under the
// example arc 1.3.6.1.4.1.55555, reserved for this test.
const adSchema = `attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'userAccountControl'
	EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.2 NAME 'sAMAccountName'
	EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'testADUser' AUXILIARY
	MAY ( userAccountControl $ sAMAccountName ) )
`

// Server is a running slapd.
type Server struct {
	// URL is ldap://127.0.0.1:PORT (plain; loopback).
	URL string
	// TLSURL is ldaps://127.0.0.1:PORT when started with TLS, else empty.
	TLSURL string
	dir    string
	t      testing.TB
	stop   func()
}

// Options configure Start.
type Options struct {
	// CertFile and KeyFile, when set, serve TLS (StartTLS on URL, and
	// ldaps on TLSURL) with this certificate.
	CertFile, KeyFile, CAFile string
}

const slapdPath = "/usr/sbin/slapd"

// Start runs slapd until the test ends, with the suffix, an admin and
// the OUs people and groups created.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	_, err := os.Stat(slapdPath)
	testkit.RequirePart(t, err != nil, "slapd (Debian package slapd)")
	testkit.RequireProgram(t, "ldapadd", "ldap-utils")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ad.schema"), []byte(adSchema), 0o600); err != nil {
		t.Fatal(err)
	}
	var conf bytes.Buffer
	fmt.Fprintf(&conf, `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include %[1]s/ad.schema
pidfile %[1]s/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
`, dir)
	if o.CertFile != "" {
		fmt.Fprintf(&conf, "TLSCertificateFile %s\nTLSCertificateKeyFile %s\n", o.CertFile, o.KeyFile)
		if o.CAFile != "" {
			fmt.Fprintf(&conf, "TLSCACertificateFile %s\n", o.CAFile)
		}
	}
	fmt.Fprintf(&conf, `database mdb
maxsize 67108864
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
index objectClass eq
index uid eq
sizelimit unlimited
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
`, dir, Suffix, AdminDN, AdminPassword)
	confPath := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{dir: dir, t: t}
	port := freePort(t)
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", port)
	urls := s.URL + "/"
	if o.CertFile != "" {
		s.TLSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", freePort(t))
		urls += " " + s.TLSURL + "/"
	}
	var logs bytes.Buffer
	cmd := exec.Command(slapdPath, "-f", confPath, "-h", urls, "-d", "0")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start slapd: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.stop = func() {
		cmd.Process.Kill()
		<-done
	}
	t.Cleanup(s.stop)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.URL, "ldap://"), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("slapd exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not listen on %s: %s", s.URL, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Add(fmt.Sprintf(`dn: %[1]s
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,%[1]s
objectClass: organizationalUnit
ou: people

dn: ou=groups,%[1]s
objectClass: organizationalUnit
ou: groups
`, Suffix))
	return s
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Stop kills slapd: the directory is down.
func (s *Server) Stop() { s.stop() }

// Add adds entries with ldapadd, as the admin.
func (s *Server) Add(ldif string) { s.run("ldapadd", ldif) }

// Modify applies changes with ldapmodify, as the admin.
func (s *Server) Modify(ldif string) { s.run("ldapmodify", ldif) }

func (s *Server) run(tool, ldif string) {
	s.t.Helper()
	cmd := exec.Command(tool, "-x", "-H", s.URL, "-D", AdminDN, "-w", AdminPassword)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("%s: %v: %s", tool, err, out)
	}
}

// Person returns the LDIF of a user under ou=people with a password.
func Person(uid, name, mail, password string) string {
	return fmt.Sprintf("dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nobjectClass: testADUser\nuid: %s\ncn: %s\nsn: %s\nmail: %s\nuserPassword: %s\nsAMAccountName: %s\nuserAccountControl: 512\n\n",
		uid, Suffix, uid, name, name, mail, password, uid)
}

// PersonDN returns the DN of the user uid under ou=people.
func PersonDN(uid string) string { return fmt.Sprintf("uid=%s,ou=people,%s", uid, Suffix) }

// GroupDN returns the DN of the group cn under ou=groups.
func GroupDN(cn string) string { return fmt.Sprintf("cn=%s,ou=groups,%s", cn, Suffix) }

// Group returns the LDIF of a groupOfNames under ou=groups with members
// (DNs: people or other groups).
func Group(cn string, members ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: groupOfNames\ncn: %s\n", GroupDN(cn), cn)
	for _, m := range members {
		fmt.Fprintf(&b, "member: %s\n", m)
	}
	b.WriteString("\n")
	return b.String()
}
