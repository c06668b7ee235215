package tcp_test

import (
	"context"
	"testing"

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
	if !tcp.IsLoopback(l.Addr()) {
		t.Fatalf("listening on \":0\" bound %v, want loopback only", l.Addr())
	}
}
