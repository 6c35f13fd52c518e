package server

import (
	"errors"
	"fmt"
	"net/http"
)

// failure is an error meant for the person or program that made the
// request: an HTTP status and a one-line message that names what was wrong
// and never holds a secret or a code. Other errors are internal and shown
// only as "internal error".
type failure struct {
	status int
	msg    string
}

func (f *failure) Error() string { return f.msg }

func fail(status int, format string, args ...any) error {
	return &failure{status: status, msg: fmt.Sprintf(format, args...)}
}

// explain maps err to a status and a message safe to show.
func explain(err error) (int, string) {
	var f *failure
	if errors.As(err, &f) {
		return f.status, f.msg
	}
	return http.StatusInternalServerError, "internal error"
}
