// Package scramble is a tether transport written outside tether, in a module
// of its own, against tether's public API only: what a user's plug-in looks
// like when it does everything a built-in transport does.
//
// On the wire it is TCP with two twists. The dialer opens with a handshake
// line, "SCRAMBLE name\n", that tells the listener who it is; after that
// every byte, both ways, is XORed with a keystream made from a shared key.
// The keystream is a toy, not security: it is there so that a hub that
// read or wrote the socket underneath the connection, bypassing its Read
// and Write, would relay garbage, and a test would see it.
//
// What it gives tether, each through the optional interface a built-in
// transport uses:
//   - options scramble-key, scramble-name and scramble-allow
//     (core.Configurable), offered by the tether command as flags;
//   - a default address, $SCRAMBLE_ADDR or 127.0.0.1:7199
//     (core.DefaultAddresser);
//   - an address for private hubs in tests and benchmarks (core.Ephemeral);
//   - a handshake the hub runs under its timeout (core.Handshaker), and the
//     name learned in it as the peer's identity (core.Identifier);
//   - an admission rule, scramble-allow, applied by the hub before the peer
//     joins (core.Admitter on the listener).
//
// Its connection type embeds *net.TCPConn and overrides Read and Write. It
// does not implement core.Transparent, so the engine reads and writes it
// through those methods only.
package scramble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tetherkit/tether/core"
)

// Name is the registry name and endpoint scheme: "scramble://127.0.0.1:7199".
const Name = "scramble"

// Transport is the scramble transport. The zero value is ready to use.
type Transport struct {
	Key   string   // shared secret; "" means "tether"
	Peer  string   // the name a dialer gives; "" means $USER, else "anonymous"
	Allow []string // a listener admits only these names; empty admits everyone
}

var (
	_ core.Transport        = Transport{}
	_ core.Configurable     = Transport{}
	_ core.DefaultAddresser = Transport{}
	_ core.Ephemeral        = Transport{}
)

// Name returns "scramble".
func (Transport) Name() string { return Name }

// Options lists scramble-key, scramble-name and scramble-allow.
func (Transport) Options() []core.Option {
	return []core.Option{
		{Name: "scramble-key", Use: core.ForListen | core.ForDial, Usage: "scramble: the shared key both sides scramble bytes with"},
		{Name: "scramble-name", Use: core.ForDial, Usage: "scramble: the name this side gives in the handshake"},
		{Name: "scramble-allow", Use: core.ForListen, Multi: true, Usage: "scramble: admit only peers giving these names (comma-separated)"},
	}
}

// Configure returns a copy of t with the options set.
func (t Transport) Configure(opts url.Values) (core.Transport, error) {
	if err := core.CheckOptions(Name, t.Options(), opts); err != nil {
		return nil, err
	}
	if v, ok := opts["scramble-key"]; ok {
		t.Key = v[0]
	}
	if v, ok := opts["scramble-name"]; ok {
		if err := checkName(v[0]); err != nil {
			return nil, &core.OptionError{Transport: Name, Option: "scramble-name", Value: v[0], Err: err}
		}
		t.Peer = v[0]
	}
	for _, v := range opts["scramble-allow"] {
		for _, name := range strings.Split(v, ",") {
			if err := checkName(name); err != nil {
				return nil, &core.OptionError{Transport: Name, Option: "scramble-allow", Value: v, Err: err}
			}
			t.Allow = append(slices.Clip(t.Allow), name)
		}
	}
	return t, nil
}

func checkName(name string) error {
	if name == "" || len(name) > 64 || strings.ContainsAny(name, " \t\r\n,") {
		return errors.New("want a name of 1 to 64 characters without spaces or commas")
	}
	return nil
}

// DefaultAddress is $SCRAMBLE_ADDR, or 127.0.0.1:7199.
func (Transport) DefaultAddress() string {
	if a := os.Getenv("SCRAMBLE_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:7199"
}

// EphemeralAddress is a loopback port the kernel picks.
func (Transport) EphemeralAddress() (string, func(), error) { return "127.0.0.1:0", func() {}, nil }

// ParseAddr checks "host:port".
func (Transport) ParseAddr(address string) (net.Addr, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("scramble: address %q: want host:port: %w", address, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("scramble: address %q: port %q is not a number from 0 to 65535", address, port)
	}
	return &Addr{Host: host, Port: uint16(p)}, nil
}

// Addr is a scramble address: a host and a port.
type Addr struct {
	Host string
	Port uint16
}

// Network returns "scramble".
func (a *Addr) Network() string { return Name }

// String returns "host:port".
func (a *Addr) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port))) }

func (t Transport) key() []byte {
	if t.Key == "" {
		return []byte("tether")
	}
	return []byte(t.Key)
}

// Listen listens on TCP; accepted connections run their handshake when the
// hub asks ([Conn.HandshakeContext]).
func (t Transport) Listen(ctx context.Context, address string) (net.Listener, error) {
	if _, err := t.ParseAddr(address); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	return &Listener{Listener: l, key: t.key(), allow: t.Allow}, nil
}

// Dial connects, sends the handshake line, and returns the scrambled
// connection.
func (t Transport) Dial(ctx context.Context, address string) (net.Conn, error) {
	if _, err := t.ParseAddr(address); err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	name := t.Peer
	if name == "" {
		if name = os.Getenv("USER"); checkName(name) != nil {
			name = "anonymous"
		}
	}
	if _, err := fmt.Fprintf(c, "SCRAMBLE %s\n", name); err != nil {
		c.Close()
		return nil, err
	}
	return &Conn{TCPConn: c.(*net.TCPConn), key: t.key(), name: name, shaken: true}, nil
}

// Listener accepts scrambled connections and admits them by name.
type Listener struct {
	net.Listener
	key   []byte
	allow []string
}

var _ core.Admitter = (*Listener)(nil)

// Accept returns the next connection; its handshake has not run yet.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &Conn{TCPConn: c.(*net.TCPConn), key: l.key}, nil
}

// Admit refuses a peer whose handshake gave a name not in scramble-allow.
func (l *Listener) Admit(c net.Conn) error {
	if len(l.allow) == 0 {
		return nil
	}
	sc, ok := c.(*Conn)
	if !ok {
		return errors.New("not a scramble connection")
	}
	if slices.Contains(l.allow, sc.name) {
		return nil
	}
	return fmt.Errorf("name %q is not allowed (scramble-allow %s)", sc.name, strings.Join(l.allow, ","))
}

// Conn is a scrambled TCP connection. It embeds *net.TCPConn for
// everything but the bytes: Read and Write unscramble and scramble.
type Conn struct {
	*net.TCPConn
	key    []byte
	name   string
	shaken bool // the handshake line has been read (listener side) or sent

	rmu, wmu sync.Mutex
	rpos     uint64 // keystream position of the next byte read
	wpos     uint64 // keystream position of the next byte written
	wbuf     []byte
}

var (
	_ core.Handshaker = (*Conn)(nil)
	_ core.Identifier = (*Conn)(nil)
)

// xor applies the keystream from position pos to p, in place.
func (c *Conn) xor(p []byte, pos uint64) {
	for i := range p {
		k := pos + uint64(i)
		p[i] ^= c.key[k%uint64(len(c.key))] ^ byte(k*131)
	}
}

// Read reads and unscrambles.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	n, err := c.TCPConn.Read(p)
	c.xor(p[:n], c.rpos)
	c.rpos += uint64(n)
	return n, err
}

// Write scrambles a copy of p and writes it.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = append(c.wbuf[:0], p...)
	c.xor(c.wbuf, c.wpos)
	n, err := c.TCPConn.Write(c.wbuf)
	c.wpos += uint64(n)
	return n, err
}

// HandshakeContext reads the dialer's "SCRAMBLE name\n" line, within ctx.
func (c *Conn) HandshakeContext(ctx context.Context) error {
	if c.shaken {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok {
		c.TCPConn.SetReadDeadline(dl)
		defer c.TCPConn.SetReadDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { c.TCPConn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var line []byte
	b := make([]byte, 1)
	for len(line) < 80 {
		if _, err := c.TCPConn.Read(b); err != nil {
			return fmt.Errorf("scramble: reading the handshake: %w", err)
		}
		if b[0] == '\n' {
			name, ok := bytes.CutPrefix(line, []byte("SCRAMBLE "))
			if !ok || checkName(string(name)) != nil {
				return fmt.Errorf("scramble: bad handshake %q", line)
			}
			c.name, c.shaken = string(name), true
			return nil
		}
		line = append(line, b[0])
	}
	return fmt.Errorf("scramble: handshake line too long: %q", line)
}

// Identity is the name the peer gave: "name=alice".
func (c *Conn) Identity() string { return "name=" + c.name }
