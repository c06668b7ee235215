package hvsock_test

import (
	"testing"

	"github.com/tetherkit/tether/internal/zerotest"
	"github.com/tetherkit/tether/transports/hvsock"
)

// TestZeroValues: every exported type's zero value answers every method
// without a panic or a hang.
func TestZeroValues(t *testing.T) {
	zerotest.Calls(t, &hvsock.Transport{})
	zerotest.Calls(t, &hvsock.Listener{})
	zerotest.Calls(t, &hvsock.Addr{})
	zerotest.Calls(t, &hvsock.AckError{})
}
