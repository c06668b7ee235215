package length_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tetherkit/tether/codecs/length"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/core/codectest"
)

func TestConformance(t *testing.T) { codectest.Run(t, length.Codec{}) }

func TestWireFormat(t *testing.T) {
	got, err := length.Codec{}.AppendFrame(nil, []byte("hi"))
	if err != nil || !bytes.Equal(got, []byte{0, 0, 0, 2, 'h', 'i'}) {
		t.Fatalf("AppendFrame(hi) = % x, %v; want 00 00 00 02 68 69", got, err)
	}
}

func TestOversizedHints(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		size int64
		hint string
		peer string
	}{
		{"4 GiB prefix", []byte{0xff, 0xff, 0xff, 0xff}, 1<<32 - 1, "", ""},
		{"text", []byte("hello\n"), 0x68656c6c, "line codec", "line"},
		{"tls", []byte{0x16, 0x03, 0x01, 0x02, 0x00}, 0x16030102, "TLS", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := length.Codec{}.NewReader(bytes.NewReader(tt.in), 0).ReadFrame()
			var tl *core.FrameTooLargeError
			if !errors.As(err, &tl) {
				t.Fatalf("got %v, want FrameTooLargeError", err)
			}
			if tl.Size != tt.size || tl.Limit != core.DefaultMaxFrame {
				t.Fatalf("size %d limit %d, want %d and %d", tl.Size, tl.Limit, tt.size, core.DefaultMaxFrame)
			}
			if !strings.Contains(tl.Hint, tt.hint) || (tt.hint == "" && tl.Hint != "") {
				t.Fatalf("hint %q, want one containing %q", tl.Hint, tt.hint)
			}
			if tl.PeerCodec != tt.peer {
				t.Fatalf("PeerCodec %q, want %q", tl.PeerCodec, tt.peer)
			}
		})
	}
}

func TestTruncatedFigures(t *testing.T) {
	_, err := length.Codec{}.NewReader(bytes.NewReader([]byte{0, 0, 0, 10, 'a', 'b'}), 0).ReadFrame()
	var tr *core.TruncatedFrameError
	if !errors.As(err, &tr) || tr.Have != 6 || tr.Want != 14 {
		t.Fatalf("got %v, want TruncatedFrameError with 6 of 14 bytes", err)
	}
}

// TestRefusesBeforeAllocating checks that a huge prefix is refused without the
// reader asking for the body at all.
func TestRefusesBeforeAllocating(t *testing.T) {
	head := binary.BigEndian.AppendUint32(nil, 1<<31)
	allocs := testing.AllocsPerRun(10, func() {
		_, _ = length.Codec{}.NewReader(bytes.NewReader(head), 0).ReadFrame()
	})
	// The reader, its 4 KiB window and the error: a handful of small objects, never 2 GiB.
	if allocs > 8 {
		t.Fatalf("%v allocations to refuse a 2 GiB frame, want a handful", allocs)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 'h', 'i'})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 5, 'a'})
	f.Add([]byte("hello\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 64
		fr := length.Codec{}.NewReader(bytes.NewReader(in), limit)
		consumed := 0
		for {
			m, err := fr.ReadFrame()
			if err == io.EOF {
				if consumed != len(in) {
					t.Fatalf("EOF after %d of %d bytes", consumed, len(in))
				}
				return
			}
			if err != nil {
				if !errors.Is(err, core.ErrFrameTooLarge) && !errors.Is(err, core.ErrTruncatedFrame) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(m) > limit || !bytes.Equal(m, in[consumed+4:consumed+4+len(m)]) {
				t.Fatalf("frame %q does not match the input", m)
			}
			consumed += 4 + len(m)
		}
	})
}
