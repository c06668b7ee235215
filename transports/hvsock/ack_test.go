package hvsock

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func FuzzParseAck(f *testing.F) {
	for _, s := range []string{"OK 1073741824", "OK 0", "OK", "ERR", "OK -1", "OK 99999999999", "ok 1", "OK 007"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		port, err := parseAck(line)
		if err != nil {
			var ack *AckError
			if !errors.As(err, &ack) {
				t.Fatalf("error %v is not an AckError", err)
			}
			return
		}
		digits, ok := strings.CutPrefix(string(line), "OK ")
		want, perr := strconv.ParseUint(digits, 10, 32)
		if !ok || perr != nil || uint32(want) != port {
			t.Fatalf("parseAck(%q) accepted it as port %d", line, port)
		}
	})
}
