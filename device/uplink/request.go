package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
)

// StatusError is an error response from the server.
type StatusError struct {
	StatusCode int
	Err        *proto.Error
	// RetryAfter is the wait the server asked for in its Retry-After
	// header; zero when it sent none.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string { return fmt.Sprintf("server: %d: %v", e.StatusCode, e.Err) }

// Unwrap returns the server's error.
func (e *StatusError) Unwrap() error { return e.Err }

func errorCode(err error) string {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Err.Code
	}
	return ""
}

// do sends a signed request and decodes the answer into out. A refusal
// for clock skew is retried once with the server's time.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any, timeout time.Duration) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		u := *c.server
		u.Path = c.server.Path + path
		u.RawQuery = query.Encode()
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			return err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("User-Agent", "totpd/"+c.cfg.Version)
		proto.Sign(req, body, c.id.sign, c.now())
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		if resp.StatusCode/100 == 2 {
			if err := json.Unmarshal(b, out); err != nil {
				return fmt.Errorf("%s %s: answer is not valid JSON", method, path)
			}
			return nil
		}
		pe := &proto.Error{}
		if json.Unmarshal(b, pe) != nil || pe.Code == "" {
			pe = &proto.Error{Code: "http", Message: resp.Status}
		}
		if pe.Code == proto.CodeClockSkew && !pe.ServerTime.IsZero() && attempt == 0 {
			skew := pe.ServerTime.Sub(c.cfg.Clock.Now().Time)
			c.log.Warn("the server refused this appliance's time; signing with the server's", "skew", skew.Round(time.Second))
			c.mu.Lock()
			c.skew = skew
			c.mu.Unlock()
			continue
		}
		return &StatusError{StatusCode: resp.StatusCode, Err: pe, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
}

// maxRetryAfter caps the wait a server's Retry-After may ask for.
const maxRetryAfter = time.Minute

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date,
// capped at maxRetryAfter; zero when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return min(time.Duration(max(n, 0))*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

// retryDelay is the wait before retrying after the fails-th failure in a
// row. A server that is up but cannot serve for now (503 from a replica
// cut off from its database, 502 or 504 from a load balancer whose
// replica went away) is retried after its Retry-After, or after the
// backoff's first step, without growing the backoff: the appliance is
// back within seconds of the server. Anything else (no answer at all)
// backs off exponentially.
func (c *Client) retryDelay(err error, fails int) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		switch se.StatusCode {
		case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusTooManyRequests:
			if se.RetryAfter > 0 {
				// A little jitter, so a fleet does not come back at once.
				return se.RetryAfter + time.Duration(rand.Int64N(int64(se.RetryAfter/4)+1))
			}
			return c.cfg.Backoff.Delay(1, nil)
		}
	}
	return c.cfg.Backoff.Delay(fails, nil)
}

const requestTimeout = 30 * time.Second
