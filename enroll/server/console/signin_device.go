package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Device cookies (OWASP's "slow down online guessing attacks with device
// cookies"): a browser in which a user has signed in carries a signed
// cookie naming that user. Sign-ins for the user from that browser spend
// its own budget (Config.SignInPerDevice); every other client shares the
// user's budget for untrusted clients (Config.SignInPerUser), whatever
// its address. Guessing from many addresses is bounded by that budget,
// and its exhaustion refuses only untrusted clients: the user's own
// browsers still sign in.

// deviceCookieLifetime is how long a device cookie is honoured after the
// sign-in that issued it; each sign-in issues a fresh one.
const deviceCookieLifetime = 90 * 24 * time.Hour

// devicePurpose separates device-cookie tags from any other MAC made with
// the same keys.
const devicePurpose = "console device cookie v1"

// DeviceKeys signs and checks device cookies. *store.Sealer implements it
// with keys derived from the master keys, so every replica honours the
// cookies of the others.
type DeviceKeys interface {
	// MAC returns a tag over msg for purpose.
	MAC(purpose string, msg []byte) []byte
	// CheckMAC reports whether tag is a tag over msg for purpose.
	CheckMAC(purpose string, msg, tag []byte) bool
}

// processKey is DeviceKeys with a random key of this process: cookies it
// signs are honoured until it restarts, by it alone.
type processKey []byte

func newProcessKey() processKey {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

func (k processKey) MAC(purpose string, msg []byte) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(msg)
	return m.Sum(nil)
}

func (k processKey) CheckMAC(purpose string, msg, tag []byte) bool {
	return hmac.Equal(k.MAC(purpose, msg), tag)
}

// deviceCookieName is the cookie that holds name's device cookie: one per
// user, so people sharing a browser each keep theirs.
func deviceCookieName(name string) string {
	h := sha256.Sum256([]byte(name))
	return "totpserver_device_" + hex.EncodeToString(h[:6])
}

// deviceCookieValue is the signed value: the username, when it was issued
// and a random id that keys the device's budget.
func (s *Console) deviceCookieValue(name string, issued time.Time) string {
	id := make([]byte, 12)
	rand.Read(id)
	msg := name + "\x00" + strconv.FormatInt(issued.Unix(), 10) + "\x00" + hex.EncodeToString(id)
	tag := s.deviceKeys.MAC(devicePurpose, []byte(msg))
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(msg)) + "." + enc.EncodeToString(tag)
}

// trustedDevice returns the id of the request's device cookie for name
// when it carries a valid, unexpired one, and "" otherwise.
func (s *Console) trustedDevice(r *http.Request, name string, now time.Time) string {
	c, err := r.Cookie(deviceCookieName(name))
	if err != nil || len(c.Value) > 512 {
		return ""
	}
	enc := base64.RawURLEncoding
	m, t, ok := strings.Cut(c.Value, ".")
	if !ok {
		return ""
	}
	msg, err1 := enc.DecodeString(m)
	tag, err2 := enc.DecodeString(t)
	if err1 != nil || err2 != nil || !s.deviceKeys.CheckMAC(devicePurpose, msg, tag) {
		return ""
	}
	parts := strings.Split(string(msg), "\x00")
	if len(parts) != 3 || parts[0] != name {
		return ""
	}
	issued, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || now.Sub(time.Unix(issued, 0)) > deviceCookieLifetime {
		return ""
	}
	return parts[2]
}

// trustDevice gives the browser a device cookie for name, after a
// complete sign-in (password, and code when one is asked).
func (s *Console) trustDevice(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{
		Name:     deviceCookieName(name),
		Value:    s.deviceCookieValue(name, s.clock.Now()),
		Path:     "/signin",
		HttpOnly: true,
		Secure:   s.secure(r),
		SameSite: http.SameSiteStrictMode,
		MaxAge:   int(deviceCookieLifetime / time.Second),
	})
}
