package ratelimit

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	l := New(Rate{PerSecond: 1, Burst: 3})
	for i := range 3 {
		if ok, _ := l.Allow("a", t0); !ok {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	ok, wait := l.Allow("a", t0)
	if ok || wait != time.Second {
		t.Fatalf("4th event = %v, wait %v; want refused, 1s", ok, wait)
	}
	if ok, _ := l.Allow("b", t0); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := l.Allow("a", t0.Add(time.Second)); !ok {
		t.Fatal("no token after a second at 1/s")
	}
	if ok, _ := l.Allow("a", t0.Add(time.Second)); ok {
		t.Fatal("two tokens after a second at 1/s")
	}
	l.Prune(t0.Add(3 * time.Second))
	if n := l.Len(); n != 1 {
		t.Fatalf("after prune %d buckets, want 1 (b refilled; a not yet)", n)
	}
	l.Prune(t0.Add(10 * time.Second))
	if n := l.Len(); n != 0 {
		t.Fatalf("after full refill %d buckets, want 0", n)
	}
}

func TestUnlimitedAndZero(t *testing.T) {
	now := time.Unix(0, 0)
	off := New(Rate{PerSecond: -1})
	for range 1000 {
		if ok, _ := off.Allow("x", now); !ok {
			t.Fatal("negative rate limited")
		}
	}
	zero := New(Rate{Burst: 1})
	zero.Allow("x", now)
	if ok, wait := zero.Allow("x", now.Add(time.Hour)); ok || wait != time.Hour {
		t.Fatalf("zero rate refilled: %v %v", ok, wait)
	}
}
