package vsock_test

import (
	"testing"

	"github.com/tetherkit/tether/internal/zerotest"
	"github.com/tetherkit/tether/transports/vsock"
)

// TestZeroValues: every exported type's zero value answers every method
// without a panic or a hang.
func TestZeroValues(t *testing.T) {
	zerotest.Calls(t, &vsock.Transport{})
	zerotest.Calls(t, &vsock.Listener{})
	zerotest.Calls(t, &vsock.Addr{})
	zerotest.Calls(t, &vsock.PeerAddr{})
}
