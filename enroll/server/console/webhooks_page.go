package console

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/store"
)

type webhooksData struct {
	Endpoints []store.WebhookEndpoint
	Dead      []store.Delivery
	Types     []string
	// Created and Secret are set once, on the page that answers a new
	// endpoint: the only time its secret is shown.
	Created *store.WebhookEndpoint
	Secret  string
	// URL and Events refill the form after an error.
	URL    string
	Events map[string]bool
}

// webhooksShow is the Webhooks page: the endpoints, a form to add one,
// and the dead letters with Redeliver.
func (s *Console) webhooksShow(w http.ResponseWriter, r *http.Request, a *auth) {
	s.renderWebhooks(w, r, a, http.StatusOK, webhooksData{}, "")
}

func (s *Console) renderWebhooks(w http.ResponseWriter, r *http.Request, a *auth, status int, d webhooksData, msg string) {
	var err error
	if d.Endpoints, err = s.core.Webhooks(r.Context()); err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	if d.Dead, err = s.core.DeadDeliveries(r.Context(), 100); err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	d.Types = events.Types
	s.render(w, r, a, status, "webhooks", page{Title: "Webhooks", Section: "webhooks", Wide: true, Error: msg, D: d})
}

// webhookCreate adds an endpoint and shows its secret, once.
func (s *Console) webhookCreate(w http.ResponseWriter, r *http.Request, a *auth) {
	url := r.PostFormValue("url")
	evs := r.PostForm["events"]
	ep, secret, err := s.core.CreateWebhook(r.Context(), a.actor(r), url, evs)
	if err != nil {
		status, msg := core.Explain(err)
		d := webhooksData{URL: url, Events: map[string]bool{}}
		for _, e := range evs {
			d.Events[e] = true
		}
		s.renderWebhooks(w, r, a, status, d, msg)
		return
	}
	s.renderWebhooks(w, r, a, http.StatusCreated, webhooksData{Created: &ep, Secret: secret}, "")
}

// webhookDelete removes an endpoint.
func (s *Console) webhookDelete(w http.ResponseWriter, r *http.Request, a *auth) {
	id := r.PathValue("id")
	if err := s.core.DeleteWebhook(r.Context(), a.actor(r), id); err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	s.setFlash(w, r, fmt.Sprintf("Webhook %s deleted.", id))
	http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
}

// webhookRedeliver queues a dead delivery again, with its event id.
func (s *Console) webhookRedeliver(w http.ResponseWriter, r *http.Request, a *auth) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.errorPage(w, r, a, core.Fail(404, "no dead delivery %q", r.PathValue("id")))
		return
	}
	if err := s.core.Redeliver(r.Context(), a.actor(r), id); err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	s.setFlash(w, r, fmt.Sprintf("Delivery %d queued again.", id))
	http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
}
