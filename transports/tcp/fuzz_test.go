package tcp_test

import (
	"testing"

	"github.com/tetherkit/tether/transports/tcp"
)

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1:7000", "[::1]:0", ":7000", "localhost:65535", "host:99999", "[fe80::1%eth0]:1", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := tcp.Transport{}.ParseAddr(s)
		if err != nil {
			return
		}
		b, err := tcp.Transport{}.ParseAddr(a.String())
		if err != nil || b.String() != a.String() {
			t.Fatalf("ParseAddr(%q) = %v, but its String does not parse back: %v, %v", s, a, b, err)
		}
	})
}
