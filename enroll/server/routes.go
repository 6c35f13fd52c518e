package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/scim"
)

// routes builds the server's mux: the console's and the API's routes,
// the appliance API, health checks, all behind cross-origin protection.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	s.console.Register(mux)
	s.api.Register(mux)
	s.scim.Register(mux)

	// Appliances sign every request; they send no Origin or Sec-Fetch-Site,
	// so the cross-origin protection below lets them through.
	mux.Handle(proto.PathPrefix, s.core.CountApplianceRequests(s.appliances.Handler()))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.console.ErrorPage(w, r, core.Fail(http.StatusForbidden, "cross-origin request refused"))
	}))
	return behindProxies(s.cfg.TrustedProxies, s.logRequests(s.securityHeaders(limitBodies(cop.Handler(mux)))))
}

// MaxBody bounds every request body (console forms, JSON APIs, appliance
// requests): larger ones are answered 413 before a handler reads them.
const MaxBody = 64 << 10

// limitBodies answers 413 to a request whose body is over MaxBody, and
// caps the body of any other at MaxBody, so no handler ever reads more. A
// body of unknown length (chunked) is read here first, at most MaxBody
// bytes and one more: a form parser that meets the cap would otherwise
// see an empty form and answer 400.
func limitBodies(h http.Handler) http.Handler {
	tooLarge := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		msg := fmt.Sprintf("request body is over %d bytes", MaxBody)
		if r.URL.Path == scim.PathPrefix || strings.HasPrefix(r.URL.Path, scim.PathPrefix+"/") {
			scim.WriteError(w, http.StatusRequestEntityTooLarge, "", msg)
			return
		}
		http.Error(w, msg, http.StatusRequestEntityTooLarge)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBody {
			tooLarge(w, r)
			return
		}
		if r.ContentLength < 0 {
			b, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
			if err != nil {
				http.Error(w, "request body could not be read", http.StatusBadRequest)
				return
			}
			if len(b) > MaxBody {
				tooLarge(w, r)
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		h.ServeHTTP(w, r)
	})
}

// securityHeaders adds Strict-Transport-Security to answers over TLS (or
// behind a TLS-terminating proxy: SecureCookies), so browsers that once
// reached the server securely never fall back to plain HTTP.
func (s *Server) securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil || s.cfg.SecureCookies {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.ServeHTTP(w, r)
	})
}

// logRequests logs each request at debug level: method, path, status and
// time taken. Bodies (which may hold codes) are never logged.
func (s *Server) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.log.Enabled(r.Context(), -4) {
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := core.NewStatusWriter(w)
		h.ServeHTTP(sw, r)
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.Status, "took", time.Since(start))
	})
}
