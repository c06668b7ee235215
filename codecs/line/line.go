// Package line is the newline-delimited codec: a message is a line.
//
// A message ends at "\n"; one "\r" right before it is dropped, so CRLF peers
// work. A final line without "\n" at the end of the stream is still a message.
// A message that itself ends in "\r" is written with one extra "\r" so that it
// reads back unchanged; a message containing "\n" cannot be carried and is
// refused with [core.ErrUnrepresentable]. See codecs/PROTOCOL.md.
//
// Importing this package registers [Codec] in [core.Codecs] as "line".
package line

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/tetherkit/tether/codecs/internal/buffer"
	"github.com/tetherkit/tether/core"
)

// Name is the codec's registry name.
const Name = "line"

// Codec is the line codec. Its zero value is ready to use.
type Codec struct{}

var _ core.Codec = Codec{}

func init() { core.Codecs.Register(Codec{}) }

// Name returns "line".
func (Codec) Name() string { return Name }

// SWAR constants: with v = word ^ newlines, (v - ones) &^ v & highs is
// non-zero exactly when the word holds a '\n'.
const (
	ones     = 0x0101010101010101
	highs    = 0x8080808080808080
	newlines = 0x0a0a0a0a0a0a0a0a
)

// hasNewline reports whether msg holds a '\n'. From 8 to 128 bytes it is
// checked eight bytes at a time in place, the first and last words
// overlapping the others (no byte-by-byte tail), which costs less than the
// call into the vectorised search; other lengths use that.
func hasNewline(msg []byte) bool {
	n := len(msg)
	if n < 8 || n > 128 {
		return bytes.IndexByte(msg, '\n') >= 0
	}
	a := binary.LittleEndian.Uint64(msg) ^ newlines
	z := binary.LittleEndian.Uint64(msg[n-8:]) ^ newlines
	found := (a-ones)&^a | (z-ones)&^z
	for i := 8; i < n-8; i += 8 {
		v := binary.LittleEndian.Uint64(msg[i:]) ^ newlines
		found |= (v - ones) &^ v
	}
	return found&highs != 0
}

// AppendFrame appends msg and "\n" to dst ("\r\n" when msg ends in "\r").
func (Codec) AppendFrame(dst, msg []byte) ([]byte, error) {
	if hasNewline(msg) {
		return dst, fmt.Errorf("line codec: message of %d bytes contains a newline: %w", len(msg), core.ErrUnrepresentable)
	}
	dst = append(dst, msg...)
	if len(msg) > 0 && msg[len(msg)-1] == '\r' {
		dst = append(dst, '\r')
	}
	return append(dst, '\n'), nil
}

var (
	lf   = []byte{'\n'}
	crlf = []byte{'\r', '\n'}
)

// SplitFrame checks msg and returns dst unchanged (a line has no header) and
// the line ending that follows msg.
func (Codec) SplitFrame(dst, msg []byte) ([]byte, []byte, error) {
	if bytes.IndexByte(msg, '\n') >= 0 {
		return dst, nil, fmt.Errorf("line codec: message of %d bytes contains a newline: %w", len(msg), core.ErrUnrepresentable)
	}
	if len(msg) > 0 && msg[len(msg)-1] == '\r' {
		return dst, crlf, nil
	}
	return dst, lf, nil
}

// NewReader returns a reader of lines from r, each at most maxFrame bytes
// (not counting the line ending).
func (Codec) NewReader(r io.Reader, maxFrame int) core.FrameReader {
	lr := &reader{limit: core.LimitOrDefault(maxFrame)}
	lr.buf.Init(r, lr.limit+2)
	return lr
}

type reader struct {
	buf     buffer.Reader
	limit   int
	scanned int // buffered bytes already known to hold no '\n'
	pending int // bytes of the previous frame still to discard
}

// SetBudget implements core.Budgeted.
func (r *reader) SetBudget(budget func(delta int) error) { r.buf.SetBudget(budget) }

// Release implements core.Budgeted.
func (r *reader) Release() { r.buf.Release() }

// Buffered returns the bytes read from the stream and not yet returned.
func (r *reader) Buffered() int { return len(r.buf.Buffered()) - r.pending }

func (r *reader) ReadFrame() ([]byte, error) {
	r.buf.Discard(r.pending)
	r.pending = 0
	for {
		data := r.buf.Buffered()
		if i := bytes.IndexByte(data[r.scanned:], '\n'); i >= 0 {
			end := r.scanned + i
			r.pending = end + 1
			r.scanned = 0
			line := data[:end]
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			if len(line) > r.limit {
				return nil, r.tooLarge(int64(len(line)))
			}
			return line, nil
		}
		r.scanned = len(data)
		if len(data) > r.limit+1 {
			return nil, r.tooLarge(int64(len(data)))
		}
		err := r.buf.Fill()
		if err == nil {
			continue
		}
		if errors.Is(err, buffer.ErrFull) {
			return nil, r.tooLarge(int64(len(data)))
		}
		if err == io.EOF && len(data) > 0 {
			if len(data) > r.limit {
				return nil, r.tooLarge(int64(len(data)))
			}
			r.pending = len(data)
			r.scanned = 0
			return data, nil
		}
		return nil, err
	}
}

func (r *reader) tooLarge(seen int64) error {
	err := &core.FrameTooLargeError{Codec: Name, Size: seen, Limit: r.limit,
		Hint: "no newline within the limit: the peer may be sending binary data"}
	if data := r.buf.Buffered(); len(data) >= 4 && data[0] == 0 {
		// A small big-endian number up front: a length prefix.
		err.Hint, err.PeerCodec = "no newline within the limit, and the bytes start like a length prefix: the peer may be speaking the length codec", "length"
	}
	return err
}
