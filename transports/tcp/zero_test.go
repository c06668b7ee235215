package tcp_test

import (
	"testing"

	"github.com/tetherkit/tether/internal/zerotest"
	"github.com/tetherkit/tether/transports/tcp"
)

// TestZeroValues: every exported type's zero value answers every method
// without a panic or a hang.
func TestZeroValues(t *testing.T) {
	zerotest.Calls(t, &tcp.Transport{})
	zerotest.Calls(t, &tcp.Listener{})
	zerotest.Calls(t, &tcp.Addr{})
}
