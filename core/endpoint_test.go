package core_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/tetherkit/tether/core"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in, transport, address string
		options                url.Values
		err                    string
	}{
		{in: "unix:///run/chat.sock", transport: "unix", address: "/run/chat.sock"},
		{in: "unix://@abstract", transport: "unix", address: "@abstract"},
		{in: "unix://./relative.sock", transport: "unix", address: "./relative.sock"},
		{in: "tcp://127.0.0.1:7000", transport: "tcp", address: "127.0.0.1:7000"},
		{in: "TCP://[::1]:7000", transport: "tcp", address: "[::1]:7000"},
		{in: "tcp://[fe80::1%25eth0]:7000", transport: "tcp", address: "[fe80::1%eth0]:7000"},
		{in: "vsock://host:5000", transport: "vsock", address: "host:5000"},
		{in: "hv+sock://x:1", transport: "hv+sock", address: "x:1"},
		{in: "unix:///tmp/x.sock?codec=length", transport: "unix", address: "/tmp/x.sock", options: url.Values{"codec": {"length"}}},
		{in: "unix:///tmp/x.sock?", transport: "unix", address: "/tmp/x.sock"},
		{in: "unix:///tmp/a%3Fb.sock?socket-mode=0660&allow-uid=1&allow-uid=2", transport: "unix", address: "/tmp/a?b.sock",
			options: url.Values{"socket-mode": {"0660"}, "allow-uid": {"1", "2"}}},
		{in: "/run/chat.sock", address: "/run/chat.sock"},
		{in: "/tmp/odd?name%.sock", address: "/tmp/odd?name%.sock"}, // bare: taken as written
		{in: "@abstract", address: "@abstract"},
		{in: "127.0.0.1:7000", address: "127.0.0.1:7000"},
		{in: "./odd://name", address: "./odd://name"},
		{in: "1tcp://x", address: "1tcp://x"},
		{in: "stdio://", transport: "stdio", address: ""},
		{in: "tcp://?codec=line", transport: "tcp", address: "", options: url.Values{"codec": {"line"}}},
		{in: "unix:///tmp/100%.sock", err: "bad escape"},
		{in: "tcp://h:1?a=%zz", err: "bad options"},
		{in: "", err: "empty address"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ep, err := core.ParseEndpoint(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseEndpoint(%q) = %+v, %v; want an error containing %q", tt.in, ep, err, tt.err)
				}
				return
			}
			if err != nil || ep.Transport != tt.transport || ep.Address != tt.address || !reflect.DeepEqual(ep.Options, tt.options) {
				t.Fatalf("ParseEndpoint(%q) = %+v, %v; want transport %q address %q options %v", tt.in, ep, err, tt.transport, tt.address, tt.options)
			}
		})
	}
}

// stubTransport checks addresses only; it is never dialed. It claims bare
// addresses as the built-ins do: unix everything (with certainty for
// paths), tcp host:port.
type stubTransport struct {
	name string
	opts url.Values
}

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
func (s stubTransport) MatchBare(a string) core.Match {
	switch {
	case s.name == "unix" && strings.ContainsAny(a[:1], "/@"):
		return core.Certain
	case s.name == "unix":
		return core.Fallback
	case s.name == "tcp" && strings.Count(a, ":") == 1 && !strings.Contains(a, "/") && strings.Trim(a[strings.Index(a, ":")+1:], "0123456789") == "":
		return core.Certain
	}
	return core.NoMatch
}
func (s stubTransport) DefaultAddress() string { return "/default/" + s.name }
func (s stubTransport) Options() []core.Option {
	if s.name != "unix" {
		return nil
	}
	return []core.Option{{Name: "socket-mode", Use: core.ForListen}, {Name: "allow-uid", Use: core.ForListen, Multi: true}}
}
func (s stubTransport) Configure(opts url.Values) (core.Transport, error) {
	if err := core.CheckOptions(s.name, s.Options(), opts); err != nil {
		return nil, err
	}
	if v := opts.Get("socket-mode"); v == "bad" {
		return nil, &core.OptionError{Transport: s.name, Option: "socket-mode", Value: v, Err: errors.New("want octal")}
	}
	s.opts = opts
	return s, nil
}

// plain is a transport with no optional interfaces at all.
type plain struct{}

func (plain) Name() string                                         { return "x" }
func (plain) ParseAddr(a string) (net.Addr, error)                 { return &net.UnixAddr{Name: a, Net: "unix"}, nil }
func (plain) Listen(context.Context, string) (net.Listener, error) { return nil, errors.ErrUnsupported }
func (plain) Dial(context.Context, string) (net.Conn, error)       { return nil, errors.ErrUnsupported }

func TestResolve(t *testing.T) {
	reg := core.NewRegistry[core.Transport]("transport")
	reg.Register(stubTransport{name: "unix"})
	reg.Register(stubTransport{name: "tcp"})
	reg.SetDefault("unix")
	tests := []struct {
		in, fallback, transport, address, codec, room, errPart string
		flags                                                  url.Values
		wantOpts                                               url.Values
	}{
		{in: "unix:///x.sock", transport: "unix", address: "/x.sock"},
		{in: "/x.sock", transport: "unix", address: "/x.sock"},
		{in: "chat.sock", transport: "unix", address: "chat.sock"},
		{in: "127.0.0.1:7000", transport: "tcp", address: "127.0.0.1:7000"},
		{in: "host:port", transport: "unix", address: "host:port"},
		{in: "/x.sock", fallback: "unix", transport: "unix", address: "/x.sock"},
		{in: "", transport: "unix", address: "/default/unix"},
		{in: "", fallback: "tcp", transport: "tcp", address: "/default/tcp"},
		{in: "unix://", transport: "unix", address: "/default/unix"},
		{in: "unix://?socket-mode=0660", transport: "unix", address: "/default/unix"},
		{in: "unix:///x.sock", fallback: "unix", transport: "unix", address: "/x.sock"},
		{in: "unix:///x.sock", fallback: "tcp", errPart: "drop one"},
		{in: "udp://1:2", errPart: "valid choices: tcp, unix"},
		{in: "unix://bad", errPart: "bad address"},
		{in: "tcp://h:1?codec=length", transport: "tcp", address: "h:1", codec: "length"},
		{in: "tcp://h:1?codec=a&codec=b", errPart: "one codec"},
		{in: "tcp://h:1?room=vms&codec=length", transport: "tcp", address: "h:1", codec: "length", room: "vms"},
		{in: "tcp://h:1?room=", errPart: "one room name"},
		{in: "tcp://h:1?room=a&room=b", errPart: "one room name"},
		{in: "tcp://h:1?socket-mode=0660", errPart: "valid: codec"},
		{in: "unix:///x?nope=1", errPart: "valid: allow-uid, codec, room, socket-mode"},
		{in: "unix:///x?socket-mode=bad", errPart: "want octal"},
		{in: "unix:///x?socket-mode=0660&allow-uid=1", transport: "unix", address: "/x",
			wantOpts: url.Values{"socket-mode": {"0660"}, "allow-uid": {"1"}}},
		// Flags apply under the query, and only to transports that declare them.
		{in: "unix:///x?socket-mode=0660", flags: url.Values{"socket-mode": {"0600"}, "allow-uid": {"7"}}, transport: "unix", address: "/x",
			wantOpts: url.Values{"socket-mode": {"0660"}, "allow-uid": {"7"}}},
		{in: "tcp://h:1", flags: url.Values{"socket-mode": {"0600"}}, transport: "tcp", address: "h:1"},
	}
	for _, tt := range tests {
		r := core.Resolver{Transports: reg, Transport: tt.fallback, Options: tt.flags}
		tgt, err := r.Resolve(tt.in)
		if tt.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errPart) {
				t.Errorf("Resolve(%q, %q): got %v, want an error containing %q", tt.in, tt.fallback, err, tt.errPart)
			}
			continue
		}
		if err != nil || tgt.Transport.Name() != tt.transport || tgt.Address != tt.address || tgt.Codec != tt.codec || tgt.Room != tt.room {
			t.Errorf("Resolve(%q, %q) = %+v, %v; want %s %s codec %q", tt.in, tt.fallback, tgt, err, tt.transport, tt.address, tt.codec)
			continue
		}
		if tt.wantOpts != nil && !reflect.DeepEqual(tgt.Transport.(stubTransport).opts, tt.wantOpts) {
			t.Errorf("Resolve(%q): transport configured with %v, want %v", tt.in, tgt.Transport.(stubTransport).opts, tt.wantOpts)
		}
	}

	// The default transport's default address is the default transport's,
	// even when another transport would claim that address written bare.
	reg.SetDefault("tcp")
	if tgt, err := core.Resolve(reg, "", ""); err != nil || tgt.Transport.Name() != "tcp" || tgt.Address != "/default/tcp" {
		t.Errorf(`Resolve("") with default tcp = %+v, %v; want tcp /default/tcp`, tgt, err)
	}

	// Two transports certain of the same bare address: the user must say.
	amb := core.NewRegistry[core.Transport]("transport")
	amb.Register(stubTransport{name: "tcp"})
	amb.Register(renamed{stubTransport{name: "tcp"}, "tcp2"})
	if _, err := core.Resolve(amb, "127.0.0.1:1", ""); err == nil || !strings.Contains(err.Error(), "could belong to transports tcp or tcp2") {
		t.Errorf("ambiguous bare address: got %v", err)
	}
	// No transport claims it, and no default.
	none := core.NewRegistry[core.Transport]("transport")
	none.Register(plain{})
	if _, err := core.Resolve(none, "anything", ""); err == nil || !strings.Contains(err.Error(), "names no transport") {
		t.Errorf("unclaimed bare address: got %v", err)
	}
	if _, err := core.Resolve(none, "", ""); err == nil || !strings.Contains(err.Error(), "no default transport") {
		t.Errorf("empty address with no default: got %v", err)
	}
	none.SetDefault("x")
	if _, err := core.Resolve(none, "", ""); err == nil || !strings.Contains(err.Error(), "has no default address") {
		t.Errorf("empty address, default without DefaultAddresser: got %v", err)
	}
}

type renamed struct {
	stubTransport
	n string
}

func (r renamed) Name() string { return r.n }

func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"unix:///run/chat.sock", "tcp://127.0.0.1:7000", "@x", "/a", "a://", "://x", "vsock://host:5000", "x:y://z",
		"unix:///a%3Fb?codec=line&x=1&x=2", "tcp://[fe80::1%25eth0]:1", "a://b?"} {
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
		if len(ep.Options) == 0 {
			ep.Options = nil
		}
		if len(again.Options) == 0 {
			again.Options = nil
		}
		if !reflect.DeepEqual(again, ep) {
			t.Fatalf("round trip of %q: %+v then %+v", s, ep, again)
		}
	})
}
