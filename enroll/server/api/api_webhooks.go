package api

import (
	"net/http"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
)

// apiWebhook is a webhook endpoint as the API shows it; Secret is set
// only in the answer to its creation.
type apiWebhook struct {
	ID       string    `json:"id"`
	URL      string    `json:"url"`
	Events   []string  `json:"events"`
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created"`
	Secret   string    `json:"secret,omitempty"`
}

func toAPIWebhook(w store.WebhookEndpoint) apiWebhook {
	return apiWebhook{ID: w.ID, URL: w.URL, Events: w.Events, Disabled: w.Disabled, Created: w.Created.UTC()}
}

// apiWebhookCreate serves POST /api/v1/webhooks {"url", "events"}: 201
// with the endpoint's id and its signing secret, shown only here.
func (s *API) apiWebhookCreate(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	var in struct {
		URL    string   `json:"url"`
		Events []string `json:"events"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	ep, secret, err := s.core.CreateWebhook(r.Context(), a, in.URL, in.Events)
	if err != nil {
		return 0, nil, err
	}
	out := toAPIWebhook(ep)
	out.Secret = secret
	w.Header().Set("Location", "/api/v1/webhooks/"+ep.ID)
	return http.StatusCreated, out, nil
}

func (s *API) apiWebhookList(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	list, err := s.core.Webhooks(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := struct {
		Webhooks []apiWebhook `json:"webhooks"`
	}{Webhooks: make([]apiWebhook, 0, len(list))}
	for _, ep := range list {
		out.Webhooks = append(out.Webhooks, toAPIWebhook(ep))
	}
	return http.StatusOK, out, nil
}

func (s *API) apiWebhookGet(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	ep, err := s.core.Webhook(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toAPIWebhook(ep), nil
}

// apiWebhookUpdate serves PATCH /api/v1/webhooks/{id} {"url", "events",
// "disabled"}, each optional.
func (s *API) apiWebhookUpdate(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	var in struct {
		URL      *string   `json:"url"`
		Events   *[]string `json:"events"`
		Disabled *bool     `json:"disabled"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	ep, err := s.core.UpdateWebhook(r.Context(), a, r.PathValue("id"), core.WebhookChange{URL: in.URL, Events: in.Events, Disabled: in.Disabled})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toAPIWebhook(ep), nil
}

func (s *API) apiWebhookDelete(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	return http.StatusNoContent, nil, s.core.DeleteWebhook(r.Context(), a, r.PathValue("id"))
}
