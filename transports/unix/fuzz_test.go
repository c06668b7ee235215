package unix_test

import (
	"testing"

	"github.com/tetherkit/tether/transports/unix"
)

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"/run/chat.sock", "@abstract", "rel.sock", "", "@", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := unix.Transport{}.ParseAddr(s)
		if err != nil {
			return
		}
		if a.String() != s {
			t.Fatalf("ParseAddr(%q).String() = %q, want the path unchanged", s, a.String())
		}
		if len(s) > unix.MaxPathLen+1 {
			t.Fatalf("ParseAddr accepted a %d-byte path", len(s))
		}
	})
}
