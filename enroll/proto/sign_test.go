package proto

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// signed returns a request signed by key at time at, as the server sees it.
func signed(key ed25519.PrivateKey, method, target string, body []byte, at time.Time) *http.Request {
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	Sign(r, body, key, at)
	return r
}

func TestVerify(t *testing.T) {
	key, other := newKey(t), newKey(t)
	body := []byte(`{"acks":[{"rev":1,"result":"applied"}]}`)
	tests := []struct {
		name    string
		req     func() (*http.Request, []byte)
		now     time.Time
		wantErr error
	}{
		{"good", func() (*http.Request, []byte) {
			return signed(key, "POST", "/api/v1/appliance/a/ack", body, t0), body
		}, t0, nil},
		{"good, empty body, query", func() (*http.Request, []byte) {
			return signed(key, "GET", "/api/v1/appliance/a/changes?after=3&wait=60", nil, t0), nil
		}, t0.Add(Window), nil},
		{"unsigned", func() (*http.Request, []byte) {
			return httptest.NewRequest("GET", "/api/v1/appliance/a/changes", nil), nil
		}, t0, ErrUnsigned},
		{"tampered body", func() (*http.Request, []byte) {
			r := signed(key, "POST", "/api/v1/appliance/a/ack", body, t0)
			return r, bytes.Replace(body, []byte(`"rev":1`), []byte(`"rev":2`), 1)
		}, t0, ErrBodyHash},
		{"tampered body and hash", func() (*http.Request, []byte) {
			r := signed(key, "POST", "/api/v1/appliance/a/ack", body, t0)
			b := bytes.Replace(body, []byte(`"rev":1`), []byte(`"rev":2`), 1)
			r.Header.Set(HeaderContentSHA256, BodyHash(b))
			return r, b
		}, t0, ErrBadSignature},
		{"tampered query", func() (*http.Request, []byte) {
			r := signed(key, "GET", "/api/v1/appliance/a/changes?after=3", nil, t0)
			r.URL.RawQuery = "after=0"
			return r, nil
		}, t0, ErrBadSignature},
		{"other path", func() (*http.Request, []byte) {
			r := signed(key, "GET", "/api/v1/appliance/a/changes", nil, t0)
			r.URL.Path = "/api/v1/appliance/b/changes"
			return r, nil
		}, t0, ErrBadSignature},
		{"other method", func() (*http.Request, []byte) {
			r := signed(key, "GET", "/api/v1/appliance/a/ack", nil, t0)
			r.Method = "POST"
			return r, nil
		}, t0, ErrBadSignature},
		{"wrong key", func() (*http.Request, []byte) {
			r := signed(other, "GET", "/api/v1/appliance/a/changes", nil, t0)
			r.Header.Set(HeaderKey, KeyID(key.Public().(ed25519.PublicKey)))
			return r, nil
		}, t0, ErrBadSignature},
		{"timestamp tampered", func() (*http.Request, []byte) {
			r := signed(key, "GET", "/api/v1/appliance/a/changes", nil, t0)
			r.Header.Set(HeaderTimestamp, "1772366401")
			return r, nil
		}, t0, ErrBadSignature},
		{"too old", func() (*http.Request, []byte) {
			return signed(key, "GET", "/x", nil, t0), nil
		}, t0.Add(Window + time.Second), ErrClockSkew},
		{"too new", func() (*http.Request, []byte) {
			return signed(key, "GET", "/x", nil, t0.Add(Window+time.Second)), nil
		}, t0, ErrClockSkew},
		{"bad key id", func() (*http.Request, []byte) {
			r := signed(key, "GET", "/x", nil, t0)
			r.Header.Set(HeaderKey, "abc")
			return r, nil
		}, t0, ErrUnsigned},
		{"short nonce", func() (*http.Request, []byte) {
			r := signed(key, "GET", "/x", nil, t0)
			r.Header.Set(HeaderNonce, "AAAA")
			return r, nil
		}, t0, ErrUnsigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v Verifier
			r, b := tt.req()
			pub, err := v.Verify(r, b, tt.now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !pub.Equal(key.Public()) {
				t.Errorf("Verify returned key %x, want the signer's", pub)
			}
			if err != nil && v.Nonces() != 0 {
				t.Errorf("a refused request left %d nonces in the cache", v.Nonces())
			}
		})
	}
}

func TestVerifyReplay(t *testing.T) {
	key := newKey(t)
	var v Verifier
	r := signed(key, "GET", "/api/v1/appliance/a/changes?after=1", nil, t0)
	if _, err := v.Verify(r, nil, t0); err != nil {
		t.Fatal(err)
	}
	for _, now := range []time.Time{t0, t0.Add(time.Minute), t0.Add(Window)} {
		if _, err := v.Verify(r, nil, now); !errors.Is(err, ErrReplay) {
			t.Errorf("replay at %v: Verify = %v, want ErrReplay", now.Sub(t0), err)
		}
	}
	// Past the window the timestamp alone refuses it, and the sweep may
	// forget the nonce.
	if _, err := v.Verify(r, nil, t0.Add(Window+time.Second)); !errors.Is(err, ErrClockSkew) {
		t.Errorf("replay after the window: Verify = %v, want ErrClockSkew", err)
	}
}

func TestVerifyCacheBound(t *testing.T) {
	key := newKey(t)
	v := Verifier{MaxNonces: 3}
	for i := range 3 {
		if _, err := v.Verify(signed(key, "GET", "/x", nil, t0), nil, t0); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if _, err := v.Verify(signed(key, "GET", "/x", nil, t0), nil, t0); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("fourth request with a full cache: Verify = %v, want ErrReplayCacheFull", err)
	}
	// Once the first nonces leave the window they are swept and room is made.
	later := t0.Add(Window + time.Second)
	if _, err := v.Verify(signed(key, "GET", "/x", nil, later), nil, later); err != nil {
		t.Fatalf("after the window: Verify = %v", err)
	}
	if n := v.Nonces(); n != 1 {
		t.Errorf("Nonces = %d after the sweep, want 1", n)
	}
}

// FuzzVerify feeds the request verifier arbitrary headers and bodies:
// Check never panics, accepts only a request signed by the key it
// returns, and Verify remembers a nonce only for a checked request.
func FuzzVerify(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(nil)
	now := time.Unix(1767225600, 0)
	good := httptest.NewRequest("POST", "/api/v1/appliance/x/ack", nil)
	Sign(good, []byte(`{"acks":[]}`), key, now)
	h := good.Header
	f.Add(h.Get(HeaderKey), h.Get(HeaderTimestamp), h.Get(HeaderNonce), h.Get(HeaderContentSHA256), h.Get(HeaderSignature), []byte(`{"acks":[]}`))
	f.Add(h.Get(HeaderKey), "0", h.Get(HeaderNonce), h.Get(HeaderContentSHA256), h.Get(HeaderSignature), []byte(`{}`))
	f.Add("", "", "", "", "", []byte(nil))
	f.Add("!!", "-1", "====", "x", "y", []byte("x"))
	f.Fuzz(func(t *testing.T, keyID, ts, nonce, hash, sig string, body []byte) {
		r := httptest.NewRequest("POST", "/api/v1/appliance/x/ack", nil)
		for k, v := range map[string]string{HeaderKey: keyID, HeaderTimestamp: ts, HeaderNonce: nonce, HeaderContentSHA256: hash, HeaderSignature: sig} {
			r.Header.Set(k, v)
		}
		var v Verifier
		pub, err := v.Check(r, body, now)
		if err != nil {
			if v.Nonces() != 0 {
				t.Fatal("Check remembered a nonce")
			}
			if _, err := v.Verify(r, body, now); err == nil {
				t.Fatal("Verify accepted what Check refused")
			}
			if v.Nonces() != 0 {
				t.Fatal("a refused request's nonce was remembered")
			}
			return
		}
		if KeyID(pub) != keyID && !strings.EqualFold(KeyID(pub), keyID) {
			// Only another spelling of the same key may pass.
			if p2, err := ParseKeyID(keyID); err != nil || !p2.Equal(pub) {
				t.Fatalf("Check returned key %s for key id %q", KeyID(pub), keyID)
			}
		}
		if err := v.Remember(r, pub, now); err != nil {
			t.Fatalf("Remember after Check: %v", err)
		}
		if err := v.Remember(r, pub, now); !errors.Is(err, ErrReplay) {
			t.Fatalf("second Remember = %v, want ErrReplay", err)
		}
	})
}
