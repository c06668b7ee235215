package tcp_test

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/core/transporttest"
	"github.com/tetherkit/tether/transports/tcp"
)

func TestConformance(t *testing.T) {
	transporttest.Run(t, transporttest.Config{
		Transport:    tcp.Transport{},
		Address:      func(*testing.T) string { return "127.0.0.1:0" },
		Unreachable:  "127.0.0.1:1",
		BadAddresses: []string{"", "localhost", "1.2.3.4:99999", "host:port", "/tmp/x.sock"},
	})
}

func TestConformanceIPv6(t *testing.T) {
	l, err := tcp.Transport{}.Listen(context.Background(), "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	l.Close()
	transporttest.Run(t, transporttest.Config{
		Transport: tcp.Transport{},
		Address:   func(*testing.T) string { return "[::1]:0" },
	})
}

func TestEmptyHostIsLoopback(t *testing.T) {
	l, err := tcp.Transport{}.Listen(context.Background(), ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if ta, ok := l.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		t.Fatalf("listening on \":0\" bound %v, want loopback only", l.Addr())
	}
}

// TestAllowNet: the listener a configured transport returns refuses peers
// outside the ranges, and names the rule.
func TestAllowNet(t *testing.T) {
	for _, tt := range []struct {
		allow string
		want  string // "" admitted, else part of the refusal
	}{
		{"127.0.0.0/8", ""},
		{"127.0.0.1", ""},
		{"10.0.0.0/8,::1", "address 127.0.0.1 is not allowed (allow-net 10.0.0.0/8,::1/128)"},
	} {
		tr, err := tcp.Transport{}.Configure(url.Values{"allow-net": {tt.allow}})
		if err != nil {
			t.Fatal(err)
		}
		l, err := tr.Listen(context.Background(), "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := tr.Dial(context.Background(), l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		a, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		err = l.(core.Admitter).Admit(a)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("allow-net %s: Admit = %v, want %q", tt.allow, err, tt.want)
		}
		c.Close()
		a.Close()
		l.Close()
	}
	if _, err := (tcp.Transport{}).Configure(url.Values{"allow-net": {"10.0.0.0/33"}}); err == nil || !strings.Contains(err.Error(), "allow-net") {
		t.Errorf("a bad range: got %v, want an error naming allow-net", err)
	}
	if _, err := (tcp.Transport{}).Configure(url.Values{"socket-mode": {"0600"}}); err == nil || !strings.Contains(err.Error(), "valid: allow-net") {
		t.Errorf("an option tcp does not take: got %v", err)
	}
}

// TestBareAddresses: what tcp claims without a scheme.
func TestBareAddresses(t *testing.T) {
	for addr, want := range map[string]core.Match{
		"127.0.0.1:7000": core.Certain, "[::1]:7000": core.Certain, "localhost:80": core.Certain, ":7000": core.Certain,
		"host:port": core.NoMatch, "./a:1": core.NoMatch, "/tmp/x.sock": core.NoMatch, "chat.sock": core.NoMatch,
	} {
		if got := (tcp.Transport{}).MatchBare(addr); got != want {
			t.Errorf("MatchBare(%q) = %v, want %v", addr, got, want)
		}
	}
}
