package events

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// MaxURL is the longest webhook URL accepted.
const MaxURL = 2048

// CheckURL reports, in one line, what is wrong with a webhook endpoint's
// URL: it must be https (http only when allowPrivate), at most MaxURL
// bytes, without credentials, fragment or an IP literal on a private,
// loopback, link-local or unspecified address (unless allowPrivate). A
// name is checked again when the delivery connects (AllowedIP), as it may
// resolve to a private address.
func CheckURL(raw string, allowPrivate bool) error {
	if len(raw) > MaxURL {
		return fmt.Errorf("webhook url is %d bytes, over the limit of %d", len(raw), MaxURL)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("webhook url %q is not an absolute URL", clip(raw))
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowPrivate:
	case u.Scheme == "http":
		return fmt.Errorf("webhook url must be https, not http (webhooks.allow_private_targets allows http)")
	default:
		return fmt.Errorf("webhook url must be https, not %q", clip(u.Scheme))
	}
	if u.User != nil {
		return errors.New("webhook url must not hold credentials (user:password@); authenticate by the signature")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("webhook url must not have a #fragment")
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("webhook url %q has no host", clip(raw))
	}
	if allowPrivate {
		return nil
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") || strings.HasSuffix(strings.ToLower(strings.TrimSuffix(host, ".")), ".localhost") {
		return fmt.Errorf("webhook url host %s is loopback (webhooks.allow_private_targets allows it)", host)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := AllowedIP(ip); err != nil {
			return fmt.Errorf("webhook url %v", err)
		}
	}
	return nil
}

// AllowedIP reports whether a webhook may connect to ip when private
// targets are not allowed: not loopback, private (RFC 1918, unique local
// fc00::/7), link-local, unspecified, multicast, CGNAT (100.64.0.0/10) or
// an IPv4-mapped form of one of these.
func AllowedIP(ip netip.Addr) error {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return fmt.Errorf("address %v is loopback (webhooks.allow_private_targets allows it)", ip)
	case ip.IsPrivate(), cgnat.Contains(ip):
		return fmt.Errorf("address %v is private (webhooks.allow_private_targets allows it)", ip)
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return fmt.Errorf("address %v is link-local (webhooks.allow_private_targets allows it)", ip)
	case ip.IsUnspecified(), ip.IsMulticast(), !ip.IsValid():
		return fmt.Errorf("address %v is not a unicast address", ip)
	}
	return nil
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// DialControl is a net.Dialer Control function that refuses a
// connection to an address AllowedIP refuses: the check at dial time,
// after the name was resolved, so a name pointing at a private address
// (or re-pointed after the URL was checked) is refused too.
func DialControl(network, address string, _ any) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("webhook: dial %s: not an IP address", address)
	}
	if err := AllowedIP(ip); err != nil {
		return fmt.Errorf("webhook: refused: %v", err)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
