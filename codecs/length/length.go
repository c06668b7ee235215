// Package length is the length-prefixed codec: a 4-byte big-endian unsigned
// length, then that many bytes of message. Any byte value may appear in a
// message; a message may be empty. See codecs/PROTOCOL.md.
//
// Importing this package registers [Codec] in [core.Codecs] as "length".
package length

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/tetherkit/tether/codecs/internal/buffer"
	"github.com/tetherkit/tether/core"
)

// Name is the codec's registry name.
const Name = "length"

// headerSize is the size of the length prefix in bytes.
const headerSize = 4

// Codec is the length-prefixed codec. Its zero value is ready to use.
type Codec struct{}

var _ core.Codec = Codec{}

func init() { core.Codecs.Register(Codec{}) }

// Name returns "length".
func (Codec) Name() string { return Name }

// AppendFrame appends the 4-byte length of msg and msg to dst.
func (Codec) AppendFrame(dst, msg []byte) ([]byte, error) {
	if uint64(len(msg)) > math.MaxUint32 {
		return dst, fmt.Errorf("length codec: message of %d bytes exceeds 4 GiB - 1: %w", len(msg), core.ErrUnrepresentable)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(msg)))
	return append(dst, msg...), nil
}

// SplitFrame appends the 4-byte length of msg to dst; there is no trailer.
func (Codec) SplitFrame(dst, msg []byte) ([]byte, []byte, error) {
	if uint64(len(msg)) > math.MaxUint32 {
		return dst, nil, fmt.Errorf("length codec: message of %d bytes exceeds 4 GiB - 1: %w", len(msg), core.ErrUnrepresentable)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(len(msg))), nil, nil
}

// NewReader returns a reader of frames from r whose announced length is
// checked against maxFrame before any byte of the body is buffered.
func (Codec) NewReader(r io.Reader, maxFrame int) core.FrameReader {
	lr := &reader{limit: core.LimitOrDefault(maxFrame)}
	lr.buf.Init(r, lr.limit+headerSize)
	return lr
}

type reader struct {
	buf     buffer.Reader
	limit   int
	pending int
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
	if err := r.buf.Need(headerSize); err != nil {
		return nil, r.endErr(err, headerSize)
	}
	head := r.buf.Buffered()[:headerSize]
	n := binary.BigEndian.Uint32(head)
	if int64(n) > int64(r.limit) {
		hint, peer := diagnose(head)
		return nil, &core.FrameTooLargeError{Codec: Name, Size: int64(n), Limit: r.limit, Hint: hint, PeerCodec: peer}
	}
	total := headerSize + int(n)
	if err := r.buf.Need(total); err != nil {
		return nil, r.endErr(err, int64(total))
	}
	r.pending = total
	return r.buf.Buffered()[headerSize:total:total], nil
}

// endErr turns the end of the stream into io.EOF (between frames) or a
// TruncatedFrameError (inside one).
func (r *reader) endErr(err error, want int64) error {
	have := len(r.buf.Buffered())
	if err == io.EOF {
		if have == 0 {
			return io.EOF
		}
		return &core.TruncatedFrameError{Codec: Name, Have: int64(have), Want: want}
	}
	return err
}

// diagnose looks at a length prefix that announced an oversized frame and
// says what the peer probably is, and which codec it seems to speak.
func diagnose(head []byte) (hint, peerCodec string) {
	text := true
	for _, c := range head {
		if c != '\t' && c != '\r' && c != '\n' && (c < 0x20 || c > 0x7e) {
			text = false
		}
	}
	switch {
	case head[0] == 0x16 && head[1] == 0x03:
		return "the bytes look like a TLS handshake: the peer may be speaking TLS", ""
	case text:
		return fmt.Sprintf("the length bytes %q look like text: the peer may be speaking the line codec", head), "line"
	}
	return "", ""
}
