package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
)

// deviceConfigData is the Device configuration page: the QR code, the
// secret key behind "Show secret key", "Send to appliance" with where the
// offer stands, and the form for the codes.
type deviceConfigData struct {
	User    store.User
	Base    string
	List    string
	Portal  bool
	Device  store.Device
	Secret  string // base32, while pending only
	URI     string
	Codes   int
	Expires time.Time
	Minutes int
	Expired bool
	// ExpiredMsg is the API's 410 message: "this registration expired
	// at …; start again".
	ExpiredMsg string
	NewDevice  string // URL to start again after expiry
	// CanSend: the console offers "Send to appliance", and so does the
	// portal to an admin (appliances are the admins').
	CanSend bool
	// Appliances are those a registration can be sent to.
	Appliances []appliance.Info
	// Offer is where the latest offer of the registration stands; nil
	// when it was not sent to an appliance.
	Offer *appliance.OfferStatus
	// Status words it (static/status.js keeps it current).
	Status offerStatus
}

// pendingDevice loads the device of the path for the wizard, showing the
// right page when it is no longer pending.
func (s *Console) pendingDevice(w http.ResponseWriter, r *http.Request, sc *scope) (store.Device, bool) {
	id, err := core.PathID(r)
	if err == nil {
		var d store.Device
		if d, err = s.core.UserDevice(r.Context(), sc.user, id); err == nil {
			return d, true
		}
	}
	var f *core.Failure
	if errors.As(err, &f) && f.Status == http.StatusGone {
		// Expired and already removed: say so, with "Start again" under
		// the same name.
		name := s.core.ExpiredName(r.Context(), sc.user, id)
		d := deviceConfigData{User: sc.user, Base: sc.base, List: sc.list(), Portal: sc.portal, Device: store.Device{Name: name},
			Expired: true, ExpiredMsg: f.Msg, NewDevice: sc.base + "/mfa-devices/new?name=" + url.QueryEscape(name)}
		s.render(w, r, sc.a, http.StatusGone, "device_configure", page{Title: "Registration expired", Section: sc.section(), D: d})
		return store.Device{}, false
	}
	s.errorPage(w, r, sc.a, err)
	return store.Device{}, false
}

func (s *Console) configData(r *http.Request, sc *scope, dev store.Device) (deviceConfigData, error) {
	d := deviceConfigData{User: sc.user, Base: sc.base, List: sc.list(), Portal: sc.portal, Device: dev, NewDevice: sc.base + "/mfa-devices/new?name=" + url.QueryEscape(dev.Name)}
	k, err := s.core.PendingKey(r.Context(), sc.user, dev)
	var f *core.Failure
	if errors.As(err, &f) && f.Status == http.StatusGone {
		d.Expired, d.ExpiredMsg = true, f.Msg
		return d, nil
	}
	if err != nil {
		return d, err
	}
	st, err := s.core.Settings(r.Context())
	if err != nil {
		return d, err
	}
	d.Secret, d.URI, d.Codes = k.SecretBase32(), k.URI(), st.RegistrationCodes
	d.Expires = dev.ExpiresAt
	d.Minutes = int(s.core.RegistrationTimeout().Minutes())
	if !sc.portal || core.Allow(sc.a.actor(r), core.OpManageDevices) == nil {
		d.CanSend = true
		p := s.core.Placement(r.Context(), dev)
		d.Offer, d.Status = p.Offer, describeOffer(p.State, p.Offer)
		all, err := s.core.Appliances().Appliances(r.Context())
		if err != nil {
			return d, err
		}
		for _, a := range core.VisibleAppliances(sc.a.actor(r), all) {
			if !a.Unpairing {
				d.Appliances = append(d.Appliances, a)
			}
		}
	}
	return d, nil
}

// deviceConfigureShow is step 2 and 3 of the wizard.
func (s *Console) deviceConfigureShow(w http.ResponseWriter, r *http.Request, sc *scope) {
	dev, ok := s.pendingDevice(w, r, sc)
	if !ok {
		return
	}
	if dev.Status == store.StatusActive {
		s.setFlash(w, r, fmt.Sprintf("MFA device %q is already registered.", dev.Name))
		http.Redirect(w, r, sc.list(), http.StatusSeeOther)
		return
	}
	s.renderConfigure(w, r, sc, dev, http.StatusOK, "")
}

// renderConfigure shows the Device configuration page of dev with status
// and an error message (empty for none). A registration found expired is
// removed; a page that would have been 200 answers 410 then.
func (s *Console) renderConfigure(w http.ResponseWriter, r *http.Request, sc *scope, dev store.Device, status int, msg string) {
	d, err := s.configData(r, sc, dev)
	if err != nil {
		s.errorPage(w, r, sc.a, err)
		return
	}
	if d.Expired {
		if status == http.StatusOK {
			status = http.StatusGone
		}
		s.core.ExpireRegistration(r.Context(), sc.user, dev)
	}
	s.render(w, r, sc.a, status, "device_configure", page{Title: "Register MFA device", Section: sc.section(), Error: msg, Field: errorField(msg, codeFields...), D: d})
}

// deviceConfirm is "Register MFA device": the typed codes make the device
// active.
func (s *Console) deviceConfirm(w http.ResponseWriter, r *http.Request, sc *scope) {
	dev, ok := s.pendingDevice(w, r, sc)
	if !ok {
		return
	}
	codes := []string{r.PostFormValue("code1")}
	if c := r.PostFormValue("code2"); r.Form.Has("code2") {
		codes = append(codes, c)
	}
	active, err := s.core.ConfirmRegistration(r.Context(), sc.a.actor(r), sc.user, dev.ID, codes)
	if err == nil {
		s.setFlash(w, r, registeredMessage(active, s.core.Placement(r.Context(), active)))
		http.Redirect(w, r, sc.list(), http.StatusSeeOther)
		return
	}
	status, msg := core.Explain(err)
	switch status {
	case http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusNotFound:
		s.errorPage(w, r, sc.a, err)
		return
	case http.StatusConflict:
		s.setFlash(w, r, msg)
		http.Redirect(w, r, sc.list(), http.StatusSeeOther)
		return
	}
	s.renderConfigure(w, r, sc, dev, status, msg)
}

// registeredMessage says that d is registered, and where it is: on the
// appliance that accepted it, or — registered by code while it was
// offered to an appliance — on none, the offer withdrawn; and, when its
// code was typed late, that it is out of sync (the seed's step 7).
func registeredMessage(d store.Device, p core.Placement) string {
	var msg string
	switch {
	case p.Appliance != "":
		msg = fmt.Sprintf("MFA device %q registered on appliance %q. It is ready for use.", d.Name, p.Appliance)
	case p.Withdrawn:
		msg = fmt.Sprintf("MFA device %q registered by code. It is ready for use. Its offer to appliance %q was withdrawn: this MFA device is on no appliance.", d.Name, p.Offer.ApplianceName)
	default:
		msg = fmt.Sprintf("MFA device %q registered. It is ready for use.", d.Name)
	}
	if d.OutOfSync {
		msg += " Its code was typed late, so it is marked out of sync: its codes work as usual, and a resync with two consecutive codes clears the mark."
	}
	return msg
}
