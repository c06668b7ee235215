package line_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/core/codectest"
)

func TestConformance(t *testing.T) { codectest.Run(t, line.Codec{}) }

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty stream", "", nil},
		{"one line", "hi\n", []string{"hi"}},
		{"crlf", "hi\r\nthere\r\n", []string{"hi", "there"}},
		{"only one cr dropped", "a\r\r\n", []string{"a\r"}},
		{"cr alone kept", "a\rb\n", []string{"a\rb"}},
		{"empty lines", "\n\n", []string{"", ""}},
		{"unterminated last line", "a\nb", []string{"a", "b"}},
		{"unterminated cr kept", "a\r", []string{"a\r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := line.Codec{}.NewReader(strings.NewReader(tt.in), 0)
			var got []string
			for {
				m, err := fr.ReadFrame()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("ReadFrame: %v", err)
				}
				got = append(got, string(m))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		msg, want string
		err       error
	}{
		{"hi", "hi\n", nil},
		{"", "\n", nil},
		{"a\r", "a\r\r\n", nil},
		{"a\nb", "", core.ErrUnrepresentable},
	}
	for _, tt := range tests {
		got, err := line.Codec{}.AppendFrame(nil, []byte(tt.msg))
		if !errors.Is(err, tt.err) || string(got) != tt.want {
			t.Errorf("AppendFrame(%q) = %q, %v; want %q, %v", tt.msg, got, err, tt.want, tt.err)
		}
	}
}

func TestEndlessLineNamesFigures(t *testing.T) {
	fr := line.Codec{}.NewReader(strings.NewReader(strings.Repeat("x", 5000)+"\n"), 100)
	_, err := fr.ReadFrame()
	var tl *core.FrameTooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("got %v, want FrameTooLargeError", err)
	}
	if tl.Limit != 100 || tl.Size < 101 || !strings.Contains(err.Error(), "binary data") || tl.PeerCodec != "" {
		t.Fatalf("got %q (size %d, limit %d, peer codec %q), want the limit 100, a size above it and a hint", err, tl.Size, tl.Limit, tl.PeerCodec)
	}
	// Length-prefixed frames sent to a line reader: named.
	fr = line.Codec{}.NewReader(strings.NewReader("\x00\x00\x01\x00"+strings.Repeat("y", 300)), 100)
	if _, err := fr.ReadFrame(); !errors.As(err, &tl) || tl.PeerCodec != "length" {
		t.Fatalf("got %v, want a FrameTooLargeError naming the length codec", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"", "a\n", "a\r\n\r\n", "a\r", "\n\n\n", strings.Repeat("z", 70)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 64
		fr := line.Codec{}.NewReader(bytes.NewReader(in), limit)
		var out []byte
		for {
			m, err := fr.ReadFrame()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, core.ErrFrameTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(m) > limit || bytes.IndexByte(m, '\n') >= 0 {
				t.Fatalf("bad frame %q", m)
			}
			// Re-encoding what was read must give a stream that reads back the same.
			out, err = line.Codec{}.AppendFrame(out, m)
			if err != nil {
				t.Fatal(err)
			}
		}
		fr2 := line.Codec{}.NewReader(bytes.NewReader(out), limit)
		fr1 := line.Codec{}.NewReader(bytes.NewReader(in), limit)
		for {
			a, err1 := fr1.ReadFrame()
			b, err2 := fr2.ReadFrame()
			if err1 != err2 || !bytes.Equal(a, b) {
				t.Fatalf("re-encoded stream differs: %q/%v vs %q/%v", a, err1, b, err2)
			}
			if err1 != nil {
				return
			}
		}
	})
}

// TestNewlineAnywhere puts a newline at every position of messages of every
// length up to 100: AppendFrame must refuse each, and accept the message
// without it.
func TestNewlineAnywhere(t *testing.T) {
	for n := 1; n <= 100; n++ {
		for i := range n {
			msg := bytes.Repeat([]byte{0x8a}, n) // bytes that differ from '\n' by one bit
			if _, err := (line.Codec{}).AppendFrame(nil, msg); err != nil {
				t.Fatalf("length %d without newline refused: %v", n, err)
			}
			msg[i] = '\n'
			if _, err := (line.Codec{}).AppendFrame(nil, msg); !errors.Is(err, core.ErrUnrepresentable) {
				t.Fatalf("length %d, newline at %d: got %v, want ErrUnrepresentable", n, i, err)
			}
		}
	}
}

// TestNewlineSearch checks the word-at-a-time check against bytes.IndexByte
// at every position and length around the word boundaries.
func TestNewlineSearch(t *testing.T) {
	for n := 0; n < 200; n++ {
		for at := -1; at < n; at++ {
			b := bytes.Repeat([]byte{'x'}, n)
			if at >= 0 {
				b[at] = '\n'
				if at+1 < n {
					b[at+1] = '\n' // a second one after the first must not confuse it
				}
			}
			if got, want := line.HasNewline(b), at >= 0; got != want {
				t.Fatalf("hasNewline of %d bytes with '\\n' at %d: %v, want %v", n, at, got, want)
			}
		}
	}
}
