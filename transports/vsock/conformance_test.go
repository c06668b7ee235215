package vsock_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tetherkit/tether/core/transporttest"
	"github.com/tetherkit/tether/transports/vsock"
)

// inLoopbackVM reports whether the test runs inside the throwaway VM that
// .ci/vsock-vm boots: a guest with only the vsock_loopback transport, where
// dialing CID 1 stays inside the guest. Anywhere else a vsock dial could reach
// a real hypervisor, so the tests that dial are skipped.
func inLoopbackVM(t *testing.T) {
	if os.Getenv("TETHER_VSOCK_VM") != "loopback" {
		t.Skip("dials vsock: runs only inside the loopback VM (bash .ci/vsock-vm)")
	}
}

var nextPort atomic.Uint32

func TestConformance(t *testing.T) {
	inLoopbackVM(t)
	nextPort.Store(20000)
	transporttest.Run(t, transporttest.Config{
		Transport: vsock.Transport{},
		Address:   func(*testing.T) string { return fmt.Sprintf("any:%d", nextPort.Add(1)) },
		DialAddress: func(l net.Listener) string {
			return strings.Replace(l.Addr().String(), "any:", "local:", 1)
		},
		Unreachable:  "local:9",
		BadAddresses: []string{"", "host", "host:4294967295", "guest:1"},
	})
}

func TestPeerIdentityIsCID(t *testing.T) {
	inLoopbackVM(t)
	cfg := transporttest.Config{Transport: vsock.Transport{}, DialAddress: func(net.Listener) string { return "local:19999" }}
	d, a, l := transporttest.Pair(t, cfg, "any:19999")
	defer l.Close()
	defer d.Close()
	defer a.Close()
	got := a.RemoteAddr().String()
	if !strings.HasPrefix(got, "local(1):") {
		t.Fatalf("peer address %q, want the CID first: local(1):PORT", got)
	}
}
