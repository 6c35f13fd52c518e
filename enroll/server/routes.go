package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
)

// routes builds the server's mux. Pages and actions live one per file;
// the device pages serve both the console (/users/{username}/...) and the
// portal (/portal/...), told apart by their scope.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	mux.HandleFunc("GET /static/{file}", s.serveStatic)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /{$}", s.home)

	mux.HandleFunc("GET /signin", s.signinShow)
	mux.HandleFunc("POST /signin", s.signinSubmit)
	mux.HandleFunc("GET /signin/code", s.signinCodeShow)
	mux.HandleFunc("POST /signin/code", s.signinCodeSubmit)
	mux.HandleFunc("POST /signout", s.signout)

	mux.HandleFunc("GET /users", s.admin(s.usersList))
	mux.HandleFunc("GET /users/new", s.admin(s.userNew))
	mux.HandleFunc("POST /users", s.admin(s.userCreate))
	mux.HandleFunc("GET /users/{username}", s.admin(s.userShow))
	mux.HandleFunc("POST /users/{username}/disable", s.admin(s.userDisable))
	mux.HandleFunc("POST /users/{username}/enable", s.admin(s.userEnable))
	mux.HandleFunc("POST /users/{username}/password", s.admin(s.userPassword))
	mux.HandleFunc("GET /users/{username}/mfa-devices", s.console(s.devicesTab))
	mux.HandleFunc("POST /users/{username}/mfa-devices/{id}/unlock", s.console(s.deviceUnlock))
	mux.HandleFunc("POST /users/{username}/mfa-devices/{id}/send", s.console(s.deviceSend))

	mux.HandleFunc("GET /settings", s.admin(s.settingsShow))
	mux.HandleFunc("POST /settings", s.admin(s.settingsSave))
	mux.HandleFunc("GET /audit", s.admin(s.auditShow))

	mux.HandleFunc("GET /appliances", s.admin(s.appliancesShow))
	mux.HandleFunc("POST /appliances", s.admin(s.appliancePair))
	mux.HandleFunc("GET /appliances/{appliance}/rename", s.admin(s.applianceRenameShow))
	mux.HandleFunc("POST /appliances/{appliance}/rename", s.admin(s.applianceRenameSubmit))
	mux.HandleFunc("GET /appliances/{appliance}/unpair", s.admin(s.applianceUnpairShow))
	mux.HandleFunc("POST /appliances/{appliance}/unpair", s.admin(s.applianceUnpairSubmit))
	mux.HandleFunc("GET /appliances/{appliance}/forget", s.admin(s.applianceForgetShow))
	mux.HandleFunc("POST /appliances/{appliance}/forget", s.admin(s.applianceForgetSubmit))

	mux.HandleFunc("GET /portal", s.signedIn(s.portalShow))

	// The MFA device pages, for admins and for users managing their own.
	for prefix, wrap := range map[string]func(scoped) http.HandlerFunc{
		"/users/{username}": s.console,
		"/portal":           s.portal,
	} {
		mux.HandleFunc("GET "+prefix+"/mfa-devices/new", wrap(s.deviceNameShow))
		mux.HandleFunc("POST "+prefix+"/mfa-devices", wrap(s.deviceNameSubmit))
		mux.HandleFunc("GET "+prefix+"/mfa-devices/{id}/configure", wrap(s.deviceConfigureShow))
		mux.HandleFunc("POST "+prefix+"/mfa-devices/{id}/confirm", wrap(s.deviceConfirm))
		mux.HandleFunc("GET "+prefix+"/mfa-devices/{id}/qr.png", wrap(s.deviceQR))
		mux.HandleFunc("GET "+prefix+"/mfa-devices/{id}/rename", wrap(s.deviceRenameShow))
		mux.HandleFunc("POST "+prefix+"/mfa-devices/{id}/rename", wrap(s.deviceRenameSubmit))
		mux.HandleFunc("GET "+prefix+"/mfa-devices/{id}/resync", wrap(s.deviceResyncShow))
		mux.HandleFunc("POST "+prefix+"/mfa-devices/{id}/resync", wrap(s.deviceResyncSubmit))
		mux.HandleFunc("GET "+prefix+"/mfa-devices/{id}/delete", wrap(s.deviceDeleteShow))
		mux.HandleFunc("POST "+prefix+"/mfa-devices/{id}/delete", wrap(s.deviceDeleteSubmit))
	}

	mux.HandleFunc("POST /api/v1/users", s.api(s.apiUserCreate))
	mux.HandleFunc("GET /api/v1/users/{username}", s.api(s.apiUserGet))
	mux.HandleFunc("POST /api/v1/users/{username}/mfa-devices", s.api(s.apiDeviceCreate))
	mux.HandleFunc("GET /api/v1/users/{username}/mfa-devices", s.api(s.apiDeviceList))
	mux.HandleFunc("DELETE /api/v1/users/{username}/mfa-devices/{id}", s.api(s.apiDeviceDelete))
	mux.HandleFunc("POST /api/v1/users/{username}/mfa-devices/{id}/confirm", s.api(s.apiDeviceConfirm))
	mux.HandleFunc("POST /api/v1/users/{username}/mfa-devices/{id}/resync", s.api(s.apiDeviceResync))
	mux.HandleFunc("POST /api/v1/verify", s.api(s.apiVerify))
	mux.HandleFunc("/api/", s.apiNotFound)

	// Appliances sign every request; they send no Origin or Sec-Fetch-Site,
	// so the cross-origin protection below lets them through.
	mux.Handle(proto.PathPrefix, s.countApplianceRequests(s.appliances.Handler()))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, nil, fail(http.StatusForbidden, "cross-origin request refused"))
	}))
	return s.logRequests(cop.Handler(mux))
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
		sw := &statusWriter{ResponseWriter: w, status: 200}
		h.ServeHTTP(sw, r)
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "took", time.Since(start))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection, for the
// appliance API's long-polls.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// pathID parses the {id} path value.
func pathID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, fail(404, "no MFA device %q", v)
	}
	return id, nil
}
