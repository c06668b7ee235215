package core_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/tetherkit/tether/core"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in, transport, address string
		err                    bool
	}{
		{"unix:///run/chat.sock", "unix", "/run/chat.sock", false},
		{"unix://@abstract", "unix", "@abstract", false},
		{"unix://relative.sock", "unix", "relative.sock", false},
		{"tcp://127.0.0.1:7000", "tcp", "127.0.0.1:7000", false},
		{"TCP://[::1]:7000", "tcp", "[::1]:7000", false},
		{"vsock://host:5000", "vsock", "host:5000", false},
		{"hv+sock://x:1", "hv+sock", "x:1", false},
		{"/run/chat.sock", "", "/run/chat.sock", false},
		{"@abstract", "", "@abstract", false},
		{"127.0.0.1:7000", "", "127.0.0.1:7000", false},
		{"./odd://name", "", "./odd://name", false},
		{"1tcp://x", "", "1tcp://x", false},
		{"tcp://", "", "", true},
		{"", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ep, err := core.ParseEndpoint(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("ParseEndpoint(%q) = %+v, want an error", tt.in, ep)
				}
				return
			}
			if err != nil || ep.Transport != tt.transport || ep.Address != tt.address {
				t.Fatalf("ParseEndpoint(%q) = %+v, %v; want transport %q address %q", tt.in, ep, err, tt.transport, tt.address)
			}
		})
	}
}

// stubTransport checks addresses only; it is never dialed.
type stubTransport struct{ name string }

func (s stubTransport) Name() string { return s.name }
func (s stubTransport) ParseAddr(a string) (net.Addr, error) {
	if strings.Contains(a, "bad") {
		return nil, errors.New("bad address")
	}
	return &net.UnixAddr{Name: a, Net: "unix"}, nil
}
func (stubTransport) Listen(context.Context, string) (net.Listener, error) {
	return nil, errors.ErrUnsupported
}
func (stubTransport) Dial(context.Context, string) (net.Conn, error) {
	return nil, errors.ErrUnsupported
}

func TestResolve(t *testing.T) {
	reg := core.NewRegistry[core.Transport]("transport")
	reg.Register(stubTransport{"unix"})
	reg.Register(stubTransport{"tcp"})
	tests := []struct {
		in, fallback, transport, address, errPart string
	}{
		{"unix:///x.sock", "", "unix", "/x.sock", ""},
		{"/x.sock", "unix", "unix", "/x.sock", ""},
		{"unix:///x.sock", "unix", "unix", "/x.sock", ""},
		{"unix:///x.sock", "tcp", "", "", "drop one"},
		{"/x.sock", "", "", "", "scheme://address"},
		{"udp://1:2", "", "", "", "valid choices: tcp, unix"},
		{"unix://bad", "", "", "", "bad address"},
	}
	for _, tt := range tests {
		tgt, err := core.Resolve(reg, tt.in, tt.fallback)
		if tt.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errPart) {
				t.Errorf("Resolve(%q, %q): got %v, want an error containing %q", tt.in, tt.fallback, err, tt.errPart)
			}
			continue
		}
		if err != nil || tgt.Transport.Name() != tt.transport || tgt.Address != tt.address {
			t.Errorf("Resolve(%q, %q) = %v, %v", tt.in, tt.fallback, tgt, err)
			continue
		}
		if tgt.String() != tt.transport+"://"+tt.address {
			t.Errorf("Target.String() = %q", tgt.String())
		}
	}
}

func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"unix:///run/chat.sock", "tcp://127.0.0.1:7000", "@x", "/a", "a://", "://x", "vsock://host:5000", "x:y://z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := core.ParseEndpoint(s)
		if err != nil {
			return
		}
		again, err := core.ParseEndpoint(ep.String())
		if err != nil {
			t.Fatalf("ParseEndpoint(%q) ok, but its String %q does not parse: %v", s, ep.String(), err)
		}
		if again != ep {
			t.Fatalf("round trip of %q: %+v then %+v", s, ep, again)
		}
	})
}
