// Package directory brings users from the organisation's directory into
// totpbox: an LDAP or Active Directory source read page by page, and the
// sync that creates, updates, disables and re-enables users from it. It
// sits over the store and the core as the RADIUS listener does: the
// protocol here, the rules (who may sign in, whose codes count) there.
package directory

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/totpbox/totpbox/enroll/server/core"
)

// LDAPConfig is directory.ldap in totpserver.yaml.
type LDAPConfig struct {
	// URL is ldap://host[:port] (with StartTLS unless the host is loopback
	// or AllowInsecure) or ldaps://host[:port].
	URL string `mapstructure:"url"`
	// StartTLS upgrades an ldap:// connection to TLS before binding.
	StartTLS bool `mapstructure:"start_tls"`
	// CAFile is a PEM bundle that signs the server's certificate; the
	// system roots when empty.
	CAFile string `mapstructure:"ca_file"`
	// AllowInsecure permits ldap:// without StartTLS to a host that is
	// not loopback: passwords then cross the network in the clear.
	AllowInsecure bool `mapstructure:"allow_insecure"`
	// BindDN and its password (from BindPasswordFile, or the systemd
	// credential BindPasswordCredential) are the service account that
	// reads users.
	BindDN                 string `mapstructure:"bind_dn"`
	BindPasswordFile       string `mapstructure:"bind_password_file"`
	BindPasswordCredential string `mapstructure:"bind_password_credential"`
	// BaseDN is where users are searched, the whole subtree.
	BaseDN string `mapstructure:"base_dn"`
	// UserFilter selects user entries, e.g. (objectClass=inetOrgPerson)
	// or AD's (&(objectCategory=person)(objectClass=user)).
	UserFilter string `mapstructure:"user_filter"`
	// UsernameAttribute, DisplayNameAttribute and EmailAttribute name the
	// attributes read: uid, cn, mail on OpenLDAP; sAMAccountName (or
	// userPrincipalName), displayName, mail on AD.
	UsernameAttribute    string `mapstructure:"username_attribute"`
	DisplayNameAttribute string `mapstructure:"display_name_attribute"`
	EmailAttribute       string `mapstructure:"email_attribute"`
	// MemberOfGroup is the DN of the group whose members (nested groups
	// included) are users here; empty: every entry the filter matches.
	MemberOfGroup string `mapstructure:"member_of_group"`
	// AdminGroup is the DN of a group whose members are admins; empty:
	// admin rights stay as set in totpbox.
	AdminGroup string `mapstructure:"admin_group"`
	// SyncInterval is how often the directory is read (default 5m).
	SyncInterval time.Duration `mapstructure:"sync_interval"`
	// PageSize is the LDAP paged-results size (default 500).
	PageSize int `mapstructure:"page_size"`
	// Timeout bounds each connection and operation (default 10s).
	Timeout time.Duration `mapstructure:"timeout"`
}

// Enabled reports whether an LDAP directory is configured.
func (c LDAPConfig) Enabled() bool { return c.URL != "" }

// Defaults for the keys left empty.
const (
	DefaultSyncInterval = 5 * time.Minute
	DefaultPageSize     = 500
	DefaultTimeout      = 10 * time.Second
)

// WithDefaults returns c with its empty keys set to their defaults.
func (c LDAPConfig) WithDefaults() LDAPConfig {
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.UserFilter == "" {
		c.UserFilter = "(objectClass=person)"
	}
	if c.UsernameAttribute == "" {
		c.UsernameAttribute = "uid"
	}
	if c.DisplayNameAttribute == "" {
		c.DisplayNameAttribute = "cn"
	}
	if c.EmailAttribute == "" {
		c.EmailAttribute = "mail"
	}
	return c
}

// Validate checks the keys without connecting, naming the first problem
// as "directory.ldap.<key>: …".
func (c LDAPConfig) Validate() error {
	if !c.Enabled() {
		return nil
	}
	c = c.WithDefaults()
	bad := func(key, format string, a ...any) error {
		return fmt.Errorf("directory.ldap.%s: %s", key, fmt.Sprintf(format, a...))
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" || (u.Scheme != "ldap" && u.Scheme != "ldaps") || (u.Path != "" && u.Path != "/") {
		return bad("url", "%q is not ldap://host[:port] or ldaps://host[:port]", c.URL)
	}
	if u.Scheme == "ldaps" && c.StartTLS {
		return bad("start_tls", "StartTLS is for ldap:// URLs; ldaps:// is TLS already")
	}
	if u.Scheme == "ldap" && !c.StartTLS && !c.AllowInsecure && !isLoopback(u.Hostname()) {
		return bad("url", "%s would send passwords in the clear: use ldaps://, set start_tls: true, or allow_insecure: true", c.URL)
	}
	if c.BaseDN == "" {
		return bad("base_dn", "required")
	}
	for key, dn := range map[string]string{"base_dn": c.BaseDN, "bind_dn": c.BindDN, "member_of_group": c.MemberOfGroup, "admin_group": c.AdminGroup} {
		if dn == "" {
			continue
		}
		if _, err := ldap.ParseDN(dn); err != nil {
			return bad(key, "%q is not a DN: %v", dn, err)
		}
	}
	if _, err := ldap.CompileFilter(c.UserFilter); err != nil {
		return bad("user_filter", "%q is not an LDAP filter: %v", c.UserFilter, err)
	}
	if c.BindDN != "" && c.BindPasswordFile == "" && c.BindPasswordCredential == "" {
		return bad("bind_dn", "give its password with bind_password_file or bind_password_credential")
	}
	if c.BindPasswordFile != "" && c.BindPasswordCredential != "" {
		return bad("bind_password_file", "give one of bind_password_file and bind_password_credential")
	}
	if c.BindPasswordCredential != "" && strings.ContainsRune(c.BindPasswordCredential, '/') {
		return bad("bind_password_credential", "%q is a credential name, not a path", c.BindPasswordCredential)
	}
	for key, attr := range map[string]string{"username_attribute": c.UsernameAttribute, "display_name_attribute": c.DisplayNameAttribute, "email_attribute": c.EmailAttribute} {
		if !validAttr(attr) {
			return bad(key, "%q is not an attribute name", attr)
		}
	}
	if c.PageSize < 1 || c.PageSize > 10000 {
		return bad("page_size", "%d is outside 1 to 10000", c.PageSize)
	}
	if c.SyncInterval < 10*time.Second {
		return bad("sync_interval", "%v is under 10s", c.SyncInterval)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validAttr(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '-')) {
			return false
		}
	}
	return true
}

// bindPassword reads the service account's password from its file or
// systemd credential.
func (c LDAPConfig) bindPassword() (string, error) {
	path := c.BindPasswordFile
	if c.BindPasswordCredential != "" {
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return "", errors.New("directory.ldap.bind_password_credential: $CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=)")
		}
		path = filepath.Join(dir, c.BindPasswordCredential)
	}
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("directory.ldap bind password: %v", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// Entry is one user as the directory has them.
type Entry struct {
	DN          string
	Username    string
	DisplayName string
	Email       string
	// Disabled: the account is disabled in the directory (AD's
	// userAccountControl ACCOUNTDISABLE bit).
	Disabled bool
	// Admin: a member of the admin group. AdminKnown says an admin
	// group is configured; without one the admin flag is left as set in
	// totpbox.
	Admin, AdminKnown bool
}

// adAccountDisable is the ACCOUNTDISABLE bit of AD's userAccountControl.
const adAccountDisable = 0x2

// LDAP is an LDAP or Active Directory user source.
type LDAP struct {
	cfg      LDAPConfig
	password string
	tls      *tls.Config
	host     string
}

// NewLDAP checks cfg and reads the bind password and CA; it does not
// connect.
func NewLDAP(cfg LDAPConfig) (*LDAP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	pw, err := cfg.bindPassword()
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.URL)
	tc := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("directory.ldap.ca_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("directory.ldap.ca_file: %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	return &LDAP{cfg: cfg, password: pw, tls: tc, host: u.Host}, nil
}

// String names the source for logs and the console: the URL.
func (l *LDAP) String() string { return l.cfg.URL }

// dial connects and, for ldap:// with start_tls, upgrades to TLS.
func (l *LDAP) dial() (*ldap.Conn, error) {
	d := &net.Dialer{Timeout: l.cfg.Timeout}
	conn, err := ldap.DialURL(l.cfg.URL, ldap.DialWithDialer(d), ldap.DialWithTLSConfig(l.tls))
	if err != nil {
		return nil, fmt.Errorf("directory %s: %v", l.cfg.URL, err)
	}
	conn.SetTimeout(l.cfg.Timeout)
	if l.cfg.StartTLS {
		if err := conn.StartTLS(l.tls); err != nil {
			conn.Close()
			return nil, fmt.Errorf("directory %s: StartTLS: %v", l.cfg.URL, err)
		}
	}
	return conn, nil
}

// serviceConn connects and binds as the service account (anonymously
// when no bind_dn is set).
func (l *LDAP) serviceConn() (*ldap.Conn, error) {
	conn, err := l.dial()
	if err != nil {
		return nil, err
	}
	if l.cfg.BindDN != "" {
		err = conn.Bind(l.cfg.BindDN, l.password)
	} else {
		err = conn.UnauthenticatedBind("")
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("directory %s: bind as %s: %v", l.cfg.URL, orAnonymous(l.cfg.BindDN), err)
	}
	return conn, nil
}

func orAnonymous(dn string) string {
	if dn == "" {
		return "anonymous"
	}
	return dn
}

// Users reads every user entry: those the filter matches under the base
// DN and, with member_of_group, members of that group (nested groups
// included). Entries whose username attribute is missing are skipped.
func (l *LDAP) Users() ([]Entry, error) {
	conn, err := l.serviceConn()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var members, admins map[string]bool
	if l.cfg.MemberOfGroup != "" {
		if members, err = l.groupMembers(conn, l.cfg.MemberOfGroup); err != nil {
			return nil, err
		}
	}
	if l.cfg.AdminGroup != "" {
		if admins, err = l.groupMembers(conn, l.cfg.AdminGroup); err != nil {
			return nil, err
		}
	}
	attrs := []string{l.cfg.UsernameAttribute, l.cfg.DisplayNameAttribute, l.cfg.EmailAttribute, "userAccountControl"}
	req := ldap.NewSearchRequest(l.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		l.cfg.UserFilter, attrs, nil)
	res, err := conn.SearchWithPaging(req, uint32(l.cfg.PageSize))
	if err != nil {
		return nil, fmt.Errorf("directory %s: search %s: %v", l.cfg.URL, l.cfg.BaseDN, err)
	}
	out := make([]Entry, 0, len(res.Entries))
	for _, e := range res.Entries {
		dn := normDN(e.DN)
		if members != nil && !members[dn] {
			continue
		}
		en := Entry{
			DN:          e.DN,
			Username:    e.GetAttributeValue(l.cfg.UsernameAttribute),
			DisplayName: e.GetAttributeValue(l.cfg.DisplayNameAttribute),
			Email:       e.GetAttributeValue(l.cfg.EmailAttribute),
			Admin:       admins[dn],
			AdminKnown:  l.cfg.AdminGroup != "",
		}
		if uac := e.GetAttributeValue("userAccountControl"); uac != "" {
			if v, err := strconv.ParseInt(uac, 10, 64); err == nil && v&adAccountDisable != 0 {
				en.Disabled = true
			}
		}
		out = append(out, en)
	}
	return out, nil
}

// groupMembers returns the normalised DNs of a group's members, following
// nested groups (member and uniqueMember attributes; each group read
// once, so cycles end). This works on any LDAP server, AD included, with
// no overlay.
func (l *LDAP) groupMembers(conn *ldap.Conn, group string) (map[string]bool, error) {
	members := map[string]bool{}
	seen := map[string]bool{}
	queue := []string{group}
	for len(queue) > 0 {
		g := queue[0]
		queue = queue[1:]
		if seen[normDN(g)] {
			continue
		}
		seen[normDN(g)] = true
		req := ldap.NewSearchRequest(g, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"member", "uniqueMember", "objectClass"}, nil)
		res, err := conn.Search(req)
		if err != nil {
			if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) && g != group {
				continue // a member that is gone
			}
			return nil, fmt.Errorf("directory %s: read group %s: %v", l.cfg.URL, g, err)
		}
		if len(res.Entries) == 0 {
			continue
		}
		e := res.Entries[0]
		vals := append(e.GetAttributeValues("member"), e.GetAttributeValues("uniqueMember")...)
		if g != group && len(vals) == 0 && !isGroup(e.GetAttributeValues("objectClass")) {
			continue
		}
		for _, m := range vals {
			n := normDN(m)
			if !members[n] {
				members[n] = true
				queue = append(queue, m)
			}
		}
	}
	return members, nil
}

func isGroup(classes []string) bool {
	for _, c := range classes {
		switch strings.ToLower(c) {
		case "groupofnames", "groupofuniquenames", "group":
			return true
		}
	}
	return false
}

// normDN returns a DN in a form two spellings of it share.
func normDN(dn string) string {
	p, err := ldap.ParseDN(dn)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(dn))
	}
	var b strings.Builder
	for i, rdn := range p.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, a := range rdn.Attributes {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(strings.ToLower(a.Type))
			b.WriteByte('=')
			b.WriteString(strings.ToLower(a.Value))
		}
	}
	return b.String()
}

// ErrBadCredentials: the directory refused the user's password (or has
// no such user): count it as a wrong password.
var ErrBadCredentials = fmt.Errorf("directory refused the password: %w", core.ErrBadPassword)

// Authenticate checks a user's password by binding as them: the entry is
// found by the service account, then a fresh connection binds with its DN
// and password. It returns ErrBadCredentials for a wrong password, an
// unknown user, or an empty password (which LDAP would take as an
// unauthenticated bind); any other error means the directory could not
// say, and the sign-in must be refused, not passed.
func (l *LDAP) Authenticate(username, password string) error {
	if password == "" || username == "" {
		return ErrBadCredentials
	}
	conn, err := l.serviceConn()
	if err != nil {
		return err
	}
	filter := fmt.Sprintf("(&%s(%s=%s))", l.cfg.UserFilter, l.cfg.UsernameAttribute, ldap.EscapeFilter(username))
	req := ldap.NewSearchRequest(l.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false,
		filter, []string{"dn"}, nil)
	res, err := conn.Search(req)
	conn.Close()
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return fmt.Errorf("directory %s: find user: %v", l.cfg.URL, err)
	}
	if res == nil || len(res.Entries) != 1 {
		return ErrBadCredentials
	}
	uc, err := l.dial()
	if err != nil {
		return err
	}
	defer uc.Close()
	if err := uc.Bind(res.Entries[0].DN, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return ErrBadCredentials
		}
		return fmt.Errorf("directory %s: bind as user: %v", l.cfg.URL, err)
	}
	return nil
}

// Check binds as the service account and counts the users, for
// `totpserver directory check`.
func (l *LDAP) Check() (int, error) {
	users, err := l.Users()
	return len(users), err
}
