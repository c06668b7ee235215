package vsock_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/tetherkit/tether/transports/vsock"
)

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in        string
		cid, port uint32
		str       string
		errPart   string
	}{
		{in: "host:5000", cid: 2, port: 5000, str: "host:5000"},
		{in: "HOST:5000", cid: 2, port: 5000, str: "host:5000"},
		{in: "local:1", cid: 1, port: 1, str: "local:1"},
		{in: "hypervisor:9", cid: 0, port: 9, str: "hypervisor:9"},
		{in: "any:5000", cid: vsock.Any, port: 5000, str: "any:5000"},
		{in: ":5000", cid: vsock.Any, port: 5000, str: "any:5000"},
		{in: "3:5000", cid: 3, port: 5000, str: "3:5000"},
		{in: "vm(3):5000", cid: 3, port: 5000, str: "3:5000"},
		{in: "host(2):1024", cid: 2, port: 1024, str: "host:1024"},
		{in: "4294967294:4294967294", cid: 4294967294, port: 4294967294, str: "4294967294:4294967294"},
		{in: "4294967296:1", errPart: "CID"},
		{in: "-1:1", errPart: "CID"},
		{in: "guest:1", errPart: "host, any"},
		{in: "host:4294967295", errPart: "port"},
		{in: "host:99999999999", errPart: "port"},
		{in: "host:", errPart: "port"},
		{in: "5000", errPart: "CID:PORT"},
		{in: "", errPart: "CID:PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := parseAddr(tt.in)
			if tt.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("Parse(%q) = %v, %v; want an error mentioning %q", tt.in, a, err, tt.errPart)
				}
				return
			}
			if err != nil || a.CID != tt.cid || a.Port != tt.port || a.String() != tt.str {
				t.Fatalf("Parse(%q) = %+v (%v), %v; want CID %d port %d %q", tt.in, a, a, err, tt.cid, tt.port, tt.str)
			}
		})
	}
}

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"host:5000", ":1", "vm(3):4", "any:0", "x:y", "4294967295:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAddr(s)
		if err != nil {
			return
		}
		b, err := parseAddr(a.String())
		if err != nil || *a != *b {
			t.Fatalf("Parse(%q) = %v, which parses back as %v, %v", s, a, b, err)
		}
	})
}

// haveVsock reports whether this machine has AF_VSOCK at all.
func haveVsock(t *testing.T) {
	if _, err := os.Stat("/dev/vsock"); err != nil {
		t.Skip("no /dev/vsock here: listening needs a vsock device (these tests never dial on the test machine)")
	}
}

// TestListenAnyCID binds on every CID. It never dials: on a test machine
// that is itself a guest, a dial would reach the real hypervisor.
func TestListenAnyCID(t *testing.T) {
	haveVsock(t)
	l, err := vsock.Transport{}.Listen(context.Background(), "any:0")
	if err != nil {
		t.Fatalf("Listen(any:0): %v", err)
	}
	defer l.Close()
	got := l.Addr().String()
	if !strings.HasPrefix(got, "any:") || got == "any:0" {
		t.Fatalf("listener address %q, want any:<the port chosen>", got)
	}
	if _, err := parseAddr(got); err != nil {
		t.Fatalf("the listener's address %q does not parse: %v", got, err)
	}
}

func TestListenTakenPortSaysSo(t *testing.T) {
	haveVsock(t)
	l, err := vsock.Transport{}.Listen(context.Background(), "any:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = vsock.Transport{}.Listen(context.Background(), l.Addr().String())
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "choose another port") {
		t.Fatalf("second Listen on %v: got %v, want EADDRINUSE with a hint", l.Addr(), err)
	}
}

func TestDialAnyRefused(t *testing.T) {
	// Refused before any socket is made.
	_, err := vsock.Transport{}.Dial(context.Background(), "any:5000")
	if err == nil || !strings.Contains(err.Error(), "peer's CID") {
		t.Fatalf("Dial(any:5000): %v, want a refusal that says to give the peer's CID", err)
	}
}

func TestDialBadAddressFailsFast(t *testing.T) {
	_, err := vsock.Transport{}.Dial(context.Background(), "host:70000000000")
	if err == nil || !strings.Contains(err.Error(), "port") {
		t.Fatalf("got %v, want a parse error naming the port", err)
	}
}

// parseAddr is ParseAddr returning the concrete type.
func parseAddr(s string) (*vsock.Addr, error) {
	a, err := vsock.Transport{}.ParseAddr(s)
	if err != nil {
		return nil, err
	}
	return a.(*vsock.Addr), nil
}

// TestAcceptAfterCloseSaysClosed: an Accept that starts after Close says
// net.ErrClosed (the library itself says EBADF), so a hub's accept loop
// ends instead of retrying. It binds, and never dials.
func TestAcceptAfterCloseSaysClosed(t *testing.T) {
	haveVsock(t)
	l, err := vsock.Transport{}.Listen(context.Background(), "any:0")
	if err != nil {
		t.Fatalf("Listen(any:0): %v", err)
	}
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
}
