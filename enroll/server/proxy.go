package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrustedProxies parses CIDRs (or single addresses) of reverse
// proxies, or returns an error naming the first bad one.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, &badProxyError{s}
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

type badProxyError struct{ s string }

func (e *badProxyError) Error() string {
	return "trusted proxy " + `"` + e.s + `"` + " is neither a CIDR (10.0.0.0/8) nor an address"
}

// trusts reports whether addr is one of the trusted proxies.
func trusts(proxies []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientAddr returns the client's address of a request whose peer is
// peer: when the peer is a trusted proxy, the rightmost address of
// X-Forwarded-For that is not itself a trusted proxy (addresses left of
// it were written by the client and prove nothing); else the peer.
func clientAddr(proxies []netip.Prefix, peer netip.Addr, xff []string) netip.Addr {
	if !trusts(proxies, peer) {
		return peer
	}
	var hops []string
	for _, h := range xff {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a garbled hop: trust nothing left of it
		}
		client = a.Unmap()
		if !trusts(proxies, client) {
			break
		}
	}
	return client
}

// behindProxies rewrites RemoteAddr of requests from trusted proxies to the
// client's address from X-Forwarded-For, so rate limits, the audit log
// and logs see the client. X-Forwarded-For from any other peer is ignored.
func behindProxies(proxies []netip.Prefix, h http.Handler) http.Handler {
	if len(proxies) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		peer, err := netip.ParseAddr(host)
		if err == nil {
			if c := clientAddr(proxies, peer, r.Header.Values("X-Forwarded-For")); c != peer {
				r = r.Clone(r.Context())
				r.RemoteAddr = net.JoinHostPort(c.String(), "0")
			}
		}
		h.ServeHTTP(w, r)
	})
}
