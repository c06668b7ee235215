package sockconn_test

import (
	"testing"

	"github.com/tetherkit/tether/internal/zerotest"
	"github.com/tetherkit/tether/transports/internal/sockconn"
)

func TestZeroValue(t *testing.T) { zerotest.Calls(t, &sockconn.Conn{}) }
