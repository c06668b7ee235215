package tlstcp_test

import (
	"testing"

	"github.com/tetherkit/tether/internal/zerotest"
	"github.com/tetherkit/tether/transports/tlstcp"
)

// TestZeroValues: every exported type's zero value answers every method
// without a panic or a hang.
func TestZeroValues(t *testing.T) {
	zerotest.Calls(t, &tlstcp.Transport{})
	zerotest.Calls(t, &tlstcp.Listener{})
	zerotest.Calls(t, &tlstcp.Conn{})
	zerotest.Calls(t, &tlstcp.Files{})
}
