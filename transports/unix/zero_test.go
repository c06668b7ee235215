package unix_test

import (
	"testing"

	"github.com/tetherkit/tether/internal/zerotest"
	"github.com/tetherkit/tether/transports/unix"
)

// TestZeroValues: every exported type's zero value answers every method
// without a panic or a hang.
func TestZeroValues(t *testing.T) {
	zerotest.Calls(t, &unix.Transport{})
	zerotest.Calls(t, &unix.Listener{})
	zerotest.Calls(t, &unix.Addr{})
	zerotest.Calls(t, &unix.PeerAddr{})
	zerotest.Calls(t, &unix.PathTooLongError{})
}
