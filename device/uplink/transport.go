package uplink

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// parseServer checks the server URL: https anywhere, plain http only to a
// loopback address.
// CheckServer reports whether s is a server URL the client accepts:
// https, or plain http to a loopback address, with no user, query or
// fragment.
func CheckServer(s string) error {
	_, err := parseServer(s)
	return err
}

func parseServer(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("client: no server URL")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("client: server %q is not a URL like https://host[:port]", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("client: server %s: plain http is allowed only to loopback addresses; use https", u.Redacted())
		}
	default:
		return nil, fmt.Errorf("client: server %s: scheme must be https", u.Redacted())
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: server %s: no user, query or fragment allowed", u.Redacted())
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParsePin parses a certificate pin: the SHA-256 of the server's
// certificate (DER) in hex, with or without colons.
func ParsePin(s string) ([]byte, error) {
	h := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, errors.New("client: certificate pin must be a SHA-256 in hex (64 digits, colons allowed)")
	}
	return b, nil
}

// CertSHA256 returns the pin of a certificate: its SHA-256 in hex.
func CertSHA256(cert *x509.Certificate) string {
	h := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(h[:])
}

// newHTTPClient builds the client that talks to the server, checking its
// certificate against the system roots, a CA file, or a pin.
func newHTTPClient(u *url.URL, caFile, pin string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2
	if u.Scheme == "https" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return nil, fmt.Errorf("client: CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("client: CA file %s holds no PEM certificate", caFile)
			}
			tc.RootCAs = pool
		}
		if pin != "" {
			want, err := ParsePin(pin)
			if err != nil {
				return nil, err
			}
			// The pin replaces chain verification: the server's own
			// certificate must be the pinned one, self-signed or not.
			tc.InsecureSkipVerify = true
			tc.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("server sent no certificate")
				}
				got := sha256.Sum256(cs.PeerCertificates[0].Raw)
				if subtle.ConstantTimeCompare(got[:], want) != 1 {
					return fmt.Errorf("server certificate SHA-256 %x does not match the pinned certificate", got)
				}
				return nil
			}
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr}, nil
}
