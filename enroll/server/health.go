package server

import (
	"context"
	"net/http"
	"time"
)

// readyTimeout bounds the store query of /readyz.
const readyTimeout = 2 * time.Second

// healthz reports that the process serves requests.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("ok\n"))
}

// readyz reports whether the server can do its work: the store answers a
// cheap query (the settings) in time. It is 503 otherwise, so a load
// balancer stops sending requests to a replica cut off from its database.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.core.Ready(ctx); err != nil {
		s.log.Warn("not ready: store unreachable", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ready: the store does not answer\n"))
		return
	}
	w.Write([]byte("ok\n"))
}
