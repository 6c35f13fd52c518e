package events

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCheckURL(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", MaxURL)
	for _, tc := range []struct {
		url          string
		allowPrivate bool
		want         string // "" for accepted
	}{
		{"https://hooks.example.com/totp", false, ""},
		{"https://203.0.113.9:8443/hook", false, ""},
		{"http://hooks.example.com/totp", false, "webhook url must be https, not http (webhooks.allow_private_targets allows http)"},
		{"http://127.0.0.1:9000/hook", true, ""},
		{"ftp://hooks.example.com/", false, `webhook url must be https, not "ftp"`},
		{"hooks.example.com/totp", false, `webhook url "hooks.example.com/totp" is not an absolute URL`},
		{"https://user:s3cret@hooks.example.com/", false, "webhook url must not hold credentials (user:password@); authenticate by the signature"},
		{"https://user:s3cret@127.0.0.1/", true, "webhook url must not hold credentials (user:password@); authenticate by the signature"},
		{long, false, "webhook url is 2068 bytes, over the limit of 2048"},
		{"https://127.0.0.1/hook", false, "webhook url address 127.0.0.1 is loopback (webhooks.allow_private_targets allows it)"},
		{"https://[::1]/hook", false, "webhook url address ::1 is loopback (webhooks.allow_private_targets allows it)"},
		{"https://localhost:8443/hook", false, "webhook url host localhost is loopback (webhooks.allow_private_targets allows it)"},
		{"https://10.1.2.3/hook", false, "webhook url address 10.1.2.3 is private (webhooks.allow_private_targets allows it)"},
		{"https://192.168.1.1/hook", false, "webhook url address 192.168.1.1 is private (webhooks.allow_private_targets allows it)"},
		{"https://100.64.0.1/hook", false, "webhook url address 100.64.0.1 is private (webhooks.allow_private_targets allows it)"},
		{"https://[fd00::1]/hook", false, "webhook url address fd00::1 is private (webhooks.allow_private_targets allows it)"},
		{"https://169.254.169.254/latest/meta-data", false, "webhook url address 169.254.169.254 is link-local (webhooks.allow_private_targets allows it)"},
		{"https://[::ffff:127.0.0.1]/hook", false, "webhook url address 127.0.0.1 is loopback (webhooks.allow_private_targets allows it)"},
		{"https://0.0.0.0/hook", false, "webhook url address 0.0.0.0 is not a unicast address"},
		{"https://hooks.example.com/#frag", false, "webhook url must not have a #fragment"},
	} {
		err := CheckURL(tc.url, tc.allowPrivate)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("CheckURL(%.50q, %v) = %q, want %q", tc.url, tc.allowPrivate, got, tc.want)
		}
		if strings.Contains(got, "\n") || strings.Contains(got, "s3cret") {
			t.Errorf("CheckURL(%.50q) error is not one clean line: %q", tc.url, got)
		}
	}
}

// TestDialControl checks the address check made at dial time, after the
// name is resolved.
func TestDialControl(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:443": false, "10.0.0.1:443": false, "[::1]:443": false, "169.254.169.254:80": false,
		"203.0.113.5:443": true, "[2001:db8::1]:443": true,
	} {
		err := DialControl("tcp", addr, nil)
		if (err == nil) != ok {
			t.Errorf("DialControl(%s) = %v, want allowed %v", addr, err, ok)
		}
	}
	if err := AllowedIP(netip.MustParseAddr("8.8.8.8")); err != nil {
		t.Errorf("AllowedIP(8.8.8.8) = %v", err)
	}
}
