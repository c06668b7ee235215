package tlstcp_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/core/transporttest"
	"github.com/tetherkit/tether/internal/testwait"
	"github.com/tetherkit/tether/internal/tlstest"
	tlst "github.com/tetherkit/tether/transports/tlstcp"
)

// pair returns a listening transport with a server certificate and a dialing
// one that trusts the CA (with a client certificate for cn, if given).
func pair(t *testing.T, requireClient bool, clientCN string) (server, client tlst.Transport) {
	pki := tlstest.New(t)
	cert, key := pki.Issue(t, "hub", true)
	scfg, err := tlst.Files{Cert: cert, Key: key, CA: pki.CA, RequireClientCert: requireClient}.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	files := tlst.Files{CA: pki.CA}
	if clientCN != "" {
		files.Cert, files.Key = pki.Issue(t, clientCN, false)
	}
	ccfg, err := files.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	return tlst.Transport{Server: scfg}, tlst.Transport{Client: ccfg}
}

// joined listens with the server's configuration and dials with the
// client's, so the conformance suite can use one value.
type joined struct{ s, c tlst.Transport }

func (j joined) Name() string                         { return "tls" }
func (j joined) ParseAddr(a string) (net.Addr, error) { return j.s.ParseAddr(a) }
func (j joined) Listen(ctx context.Context, a string) (net.Listener, error) {
	return j.s.Listen(ctx, a)
}
func (j joined) Dial(ctx context.Context, a string) (net.Conn, error) { return j.c.Dial(ctx, a) }

func TestConformance(t *testing.T) {
	s, c := pair(t, true, "alice")
	transporttest.Run(t, transporttest.Config{
		Transport:    joined{s, c},
		Address:      func(*testing.T) string { return "127.0.0.1:0" },
		Unreachable:  "127.0.0.1:1",
		BadAddresses: []string{"", "x", "127.0.0.1:99999"},
		// nettest's deadline tests write past a deadline and go on; a
		// crypto/tls connection is unusable after a write timeout.
		NoTimeoutRecovery: "crypto/tls connections do not survive a write timeout",
	})
}

// serveTLS runs srv on a loopback TLS listener until the test ends and
// returns its address.
func serveTLS(t *testing.T, s tlst.Transport, srv *core.Server) string {
	t.Helper()
	l, err := s.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l, line.Codec{})
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func TestHubNamesClientsByCertificate(t *testing.T) {
	s, c := pair(t, true, "alice")
	srv := &core.Server{NameByIdentity: true, Chat: true}
	addr := serveTLS(t, s, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := core.Dial(ctx, c, addr, line.Codec{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := core.Dial(ctx, c, addr, line.Codec{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	testwait.For(t, "both clients in the room", testwait.Timeout, func() bool { return len(srv.Peers()) == 2 })
	a.Send([]byte("hi"))
	b.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
	m, err := b.Receive()
	if err != nil || string(m) != "cn=alice: hi" {
		t.Fatalf("got %q, %v; want the certificate's name as the sender", m, err)
	}
}

func TestClientWithoutCertificateRefused(t *testing.T) {
	s, c := pair(t, true, "")
	srv := &core.Server{}
	addr := serveTLS(t, s, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := core.Dial(ctx, c, addr, line.Codec{}, 0)
	if err == nil {
		// TLS 1.3 reports the refusal on the first read.
		cl.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = cl.Receive()
		cl.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate was admitted")
	}
	if n := len(srv.Peers()); n != 0 {
		t.Fatalf("%d peers in the room, want 0", n)
	}
}

func TestUntrustedServerRefused(t *testing.T) {
	s, _ := pair(t, false, "")
	_, other := pair(t, false, "") // trusts another CA
	addr := serveTLS(t, s, &core.Server{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := other.Dial(ctx, addr)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("got %v, want a certificate error", err)
	}
}

func TestListenWithoutCertificate(t *testing.T) {
	_, err := tlst.Transport{}.Listen(context.Background(), "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "tls-cert") {
		t.Fatalf("got %v, want an error naming the tls-cert option", err)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	s, _ := pair(t, false, "")
	srv := &core.Server{HandshakeTimeout: 200 * time.Millisecond}
	addr := serveTLS(t, s, srv)
	// A plain TCP client that never starts the handshake.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = raw.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server kept a client that never shook hands: %v", err)
	}
}
