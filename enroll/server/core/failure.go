package core

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/totpbox/totpbox/enroll/store"
)

// Failure is an error meant for the person or program that made the
// request: an HTTP status and a one-line message that names what was wrong
// and never holds a secret or a code. Other errors are internal and shown
// only as "internal error".
type Failure struct {
	// Status is the HTTP status the failure answers with.
	Status int
	// Msg is the message shown to the requester.
	Msg string
}

func (f *Failure) Error() string { return f.Msg }

// Fail returns a *Failure with status and a formatted message.
func Fail(status int, format string, args ...any) error {
	return &Failure{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// Explain maps err to a status and a message safe to show: a Failure's
// own, or 500 and "internal error" for any other error.
func Explain(err error) (int, string) {
	var f *Failure
	if errors.As(err, &f) {
		return f.Status, f.Msg
	}
	if store.IsUnavailable(err) {
		return http.StatusServiceUnavailable, Unavailable
	}
	return http.StatusInternalServerError, "internal error"
}

// Unavailable is the message of a 503 answered because the store cannot
// be reached or cannot serve for now.
const Unavailable = "the database is unavailable; try again in a few seconds"

// RetryAfter is the Retry-After, in seconds, of answers 503 because the
// store is unavailable: short, since a replica's database usually comes
// back (or the balancer moves the client on) within seconds.
const RetryAfter = "5"

// TimeLayout is how instants are shown to people, in messages and pages.
const TimeLayout = "2006-01-02 15:04:05 UTC"

// PathID parses the {id} path value of a request: an MFA device's id. A
// bad one is a 404 Failure.
func PathID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, Fail(404, "no MFA device %q", v)
	}
	return id, nil
}
