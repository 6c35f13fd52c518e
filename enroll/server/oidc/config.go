package oidc

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Config is oidc in totpserver.yaml (every key is commented there).
type Config struct {
	// Issuer is the OpenID Provider's issuer URL; discovery reads
	// <issuer>/.well-known/openid-configuration. Empty: no OIDC.
	Issuer string `mapstructure:"issuer"`
	// ClientID is this server's client at the provider.
	ClientID string `mapstructure:"client_id"`
	// ClientSecretFile or the systemd credential ClientSecretCredential
	// holds the client's secret.
	ClientSecretFile       string `mapstructure:"client_secret_file"`
	ClientSecretCredential string `mapstructure:"client_secret_credential"`
	// RedirectURL is where the provider sends the browser back; its path
	// is served as the callback.
	RedirectURL string `mapstructure:"redirect_url"`
	// Scopes asked for; openid is always among them.
	Scopes []string `mapstructure:"scopes"`
	// UsernameClaim names the ID token claim that is the totpbox username
	// (default preferred_username).
	UsernameClaim string `mapstructure:"username_claim"`
	// GroupsClaim names the ID token claim listing the person's groups
	// (default groups).
	GroupsClaim string `mapstructure:"groups_claim"`
	// RoleMap gives the groups' roles in the console.
	RoleMap []RoleMapping `mapstructure:"role_map"`
	// AllowLocalSignin lets users sign in with local passwords beside
	// OIDC; local admins may always (break glass), from LocalSigninFrom.
	AllowLocalSignin bool `mapstructure:"allow_local_signin"`
	// LocalSigninFrom, when not empty, limits local password sign-in to
	// these addresses or CIDR ranges.
	LocalSigninFrom []string `mapstructure:"local_signin_from"`
	// DisplayName is the provider's name on the button, "Sign in with
	// <name>" (default "single sign-on").
	DisplayName string `mapstructure:"display_name"`
}

// RoleMapping is one entry of role_map: members of Group get Role, an
// admin, helpdesk or auditor role, optionally limited to one site as
// "helpdesk@store-12".
type RoleMapping struct {
	Group string `mapstructure:"group"`
	Role  string `mapstructure:"role"`
}

// Enabled reports whether OIDC sign-in is configured.
func (c Config) Enabled() bool { return c.Issuer != "" }

// Roles a group may be given, lowest first: the highest of a person's
// roles wins.
var roleRank = []string{"auditor", "helpdesk", "admin"}

// WithDefaults returns c with its empty keys set to their defaults.
func (c Config) WithDefaults() Config {
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"openid", "profile"}
	}
	if !slices.Contains(c.Scopes, "openid") {
		c.Scopes = append([]string{"openid"}, c.Scopes...)
	}
	if c.UsernameClaim == "" {
		c.UsernameClaim = "preferred_username"
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	}
	if c.DisplayName == "" {
		c.DisplayName = "single sign-on"
	}
	return c
}

var siteRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// parseRole splits "helpdesk@store-12" into its role and site.
func parseRole(s string) (role, site string, err error) {
	role, site, limited := strings.Cut(strings.TrimSpace(s), "@")
	if !slices.Contains(roleRank, role) {
		return "", "", fmt.Errorf("%q is not admin, helpdesk or auditor (optionally @site)", s)
	}
	if limited && !siteRE.MatchString(site) {
		return "", "", fmt.Errorf("%q: the site %q is not a site name (letters, digits, . _ -)", s, site)
	}
	return role, site, nil
}

// Validate checks the keys without connecting, naming the first problem
// as "oidc.<key>: …".
func (c Config) Validate() error {
	if !c.Enabled() {
		if c.ClientID != "" || c.RedirectURL != "" || len(c.RoleMap) > 0 {
			return errors.New("oidc.issuer: required when the other oidc keys are set")
		}
		return nil
	}
	c = c.WithDefaults()
	bad := func(key, format string, a ...any) error {
		return fmt.Errorf("oidc.%s: %s", key, fmt.Sprintf(format, a...))
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) || u.RawQuery != "" || u.Fragment != "" {
		return bad("issuer", "%q is not an https:// URL (http:// only for loopback)", c.Issuer)
	}
	if c.ClientID == "" {
		return bad("client_id", "required")
	}
	if (c.ClientSecretFile == "") == (c.ClientSecretCredential == "") {
		return bad("client_secret_file", "give one of client_secret_file and client_secret_credential")
	}
	if strings.ContainsRune(c.ClientSecretCredential, '/') {
		return bad("client_secret_credential", "%q is a credential name, not a path", c.ClientSecretCredential)
	}
	r, err := url.Parse(c.RedirectURL)
	if err != nil || r.Host == "" || (r.Scheme != "https" && r.Scheme != "http") || !strings.HasPrefix(r.Path, "/") || r.RawQuery != "" || r.Fragment != "" {
		return bad("redirect_url", "%q is not an absolute http(s) URL with a path, e.g. https://totp.example.com/signin/oidc/callback", c.RedirectURL)
	}
	if r.Path == "/signin/oidc" || r.Path == "/signin" || !strings.HasPrefix(r.Path, "/signin/") {
		return bad("redirect_url", "the path %q must be under /signin/ and not /signin/oidc itself, e.g. /signin/oidc/callback", r.Path)
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\"") {
			return bad("scopes", "%q is not a scope", s)
		}
	}
	for key, claim := range map[string]string{"username_claim": c.UsernameClaim, "groups_claim": c.GroupsClaim} {
		if strings.ContainsAny(claim, " \t") {
			return bad(key, "%q is not a claim name", claim)
		}
	}
	for i, m := range c.RoleMap {
		if strings.TrimSpace(m.Group) == "" {
			return bad(fmt.Sprintf("role_map[%d].group", i), "required")
		}
		if _, _, err := parseRole(m.Role); err != nil {
			return bad(fmt.Sprintf("role_map[%d].role", i), "%v", err)
		}
	}
	if _, err := ParsePrefixes(c.LocalSigninFrom); err != nil {
		return bad("local_signin_from", "%v", err)
	}
	return nil
}

// ParsePrefixes reads local_signin_from: addresses (a range of one) and
// CIDR ranges.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or CIDR range", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// clientSecret reads the client's secret from its file or systemd
// credential.
func (c Config) clientSecret() (string, error) {
	path := c.ClientSecretFile
	if c.ClientSecretCredential != "" {
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return "", errors.New("oidc.client_secret_credential: $CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=)")
		}
		path = filepath.Join(dir, c.ClientSecretCredential)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("oidc client secret: %v", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("oidc client secret: %s is empty", path)
	}
	return s, nil
}

// Grant is the console role a person's groups give them: Role is admin,
// helpdesk or auditor, limited to Sites when that is not empty.
type Grant struct {
	Role  string
	Sites []string
}

// RoleFor returns the role groups give through role_map: the highest of
// the roles mapped to any of them, limited to the union of its sites
// unless one of its mappings has none. ok is false when no group is
// mapped. Groups compare exactly.
func (c Config) RoleFor(groups []string) (g Grant, ok bool) {
	best := -1
	unlimited := false
	var sites []string
	for _, m := range c.RoleMap {
		if !slices.Contains(groups, m.Group) {
			continue
		}
		role, site, err := parseRole(m.Role)
		if err != nil {
			continue
		}
		rank := slices.Index(roleRank, role)
		if rank > best {
			best, unlimited, sites = rank, false, nil
		}
		if rank < best {
			continue
		}
		if site == "" {
			unlimited = true
		} else if !slices.Contains(sites, site) {
			sites = append(sites, site)
		}
	}
	if best < 0 {
		return Grant{}, false
	}
	g.Role = roleRank[best]
	if !unlimited {
		slices.Sort(sites)
		g.Sites = sites
	}
	return g, true
}
