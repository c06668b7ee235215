// Package testwait is how tether's tests wait: every wait has a deadline and
// fails saying what it waited for, and none is a sleep standing in for an
// event.
package testwait

import (
	"testing"
	"time"
)

// Timeout is the deadline of a wait that names none: long enough for a
// loaded CI machine, short enough that a hang fails the test in seconds.
const Timeout = 10 * time.Second

// For polls cond every few milliseconds until it holds, failing the test
// after timeout with what it was waiting for.
func For(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Recv receives from ch, failing the test after timeout with what it was
// waiting for.
func Recv[T any](t testing.TB, what string, timeout time.Duration, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
	var zero T
	return zero
}
