package core

import "io"

// DefaultMaxFrame is the maximum message size used when a limit of 0 is given:
// 1 MiB.
const DefaultMaxFrame = 1 << 20

// Codec frames messages on a byte stream. The wire formats of the built-in
// codecs are written down in codecs/PROTOCOL.md.
//
// A Codec must be safe for concurrent use; the readers it creates are not.
type Codec interface {
	// Name is the registry name, such as "line".
	Name() string
	// AppendFrame appends msg, framed, to dst and returns the extended slice.
	// It returns an error wrapping [ErrUnrepresentable] when the codec cannot
	// carry msg; dst is then returned unchanged.
	AppendFrame(dst, msg []byte) ([]byte, error)
	// NewReader returns a reader of frames from r that refuses, before
	// allocating for it, any frame larger than maxFrame bytes (0 means
	// [DefaultMaxFrame]).
	NewReader(r io.Reader, maxFrame int) FrameReader
}

// FrameReader reads messages one at a time.
type FrameReader interface {
	// ReadFrame returns the next message. The slice is only valid until the
	// next call to ReadFrame; copy it to keep it. At a clean end of stream it
	// returns io.EOF; a stream that ends inside a frame gives a
	// [*TruncatedFrameError], an oversized frame a [*FrameTooLargeError].
	// After a read deadline passes (an error matching
	// os.ErrDeadlineExceeded) a reader should stay usable, keeping what it
	// has buffered, so the caller can extend the deadline and call again;
	// after any other error it is unusable and the stream should be closed.
	ReadFrame() ([]byte, error)
}

// LimitOrDefault returns maxFrame, or [DefaultMaxFrame] when maxFrame <= 0.
func LimitOrDefault(maxFrame int) int {
	if maxFrame <= 0 {
		return DefaultMaxFrame
	}
	return maxFrame
}

// Buffered is an optional interface of a [FrameReader]: the number of bytes
// read from the stream but not yet returned as frames. The built-in codecs
// implement it; a program uses it to flush its own output only when no
// further message is already waiting.
type Buffered interface {
	Buffered() int
}

// FrameSplitter is an optional interface of a [Codec]: it frames msg as a
// header appended to dst and a trailer, without copying msg, so that a
// large message can be written from where it lies (header, msg and trailer
// in one vectored write). Both built-in codecs implement it.
type FrameSplitter interface {
	// SplitFrame appends the bytes that go before msg to dst and returns
	// them with the bytes that go after it (a slice the caller must not
	// change), or an error as AppendFrame would.
	SplitFrame(dst, msg []byte) (head, trailer []byte, err error)
}

// Budgeted is an optional interface of a [FrameReader] whose buffer can grow
// past a small fixed size for large frames. The server gives it a budget
// shared by all its clients: the reader asks budget(n) before holding n
// bytes of such a buffer and returns them with budget(-n); an error refuses
// the growth and ends the stream with that error. Release gives everything
// back when the stream is done. The built-in codecs implement it.
type Budgeted interface {
	SetBudget(budget func(delta int) error)
	Release()
}
