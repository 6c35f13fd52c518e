package server

import "time"

// Clock tells the server the time. Every decision that depends on time
// (code steps, expiry, lockouts, sessions, rate limits) reads it, so tests
// and the simulator can run the server in virtual time.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
