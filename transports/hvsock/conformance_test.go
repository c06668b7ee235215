package hvsock_test

import (
	"fmt"
	"testing"

	"github.com/tetherkit/tether/core/transporttest"
	"github.com/tetherkit/tether/transports/hvsock"
)

// TestConformance runs the shared suite through an emulated VMM that
// connects the host's CONNECT requests back to the host's own listeners.
func TestConformance(t *testing.T) {
	v := newVMM(t)
	v.bridge()
	n := 0
	transporttest.Run(t, transporttest.Config{
		Transport:    hvsock.Transport{},
		Address:      func(*testing.T) string { n++; return fmt.Sprintf("%s:%d", v.path, 100+n) },
		Unreachable:  "/nonexistent/v.sock:1",
		BadAddresses: []string{"", "/v.sock", "/v.sock:x", ":1"},
	})
}
