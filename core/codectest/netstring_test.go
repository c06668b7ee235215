package codectest_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"testing"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/core/codectest"
)

// netstring is a codec with a syntax ("5:hello,"), written from the Codec
// documentation alone, the way a user would: it reads with Peek so that a
// deadline in the middle of a frame loses nothing, and reports bytes that
// break the syntax with core.ErrMalformedFrame.
type netstring struct{}

func (netstring) Name() string { return "netstring" }

func (netstring) AppendFrame(dst, msg []byte) ([]byte, error) {
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ':')
	dst = append(dst, msg...)
	return append(dst, ','), nil
}

func (netstring) NewReader(r io.Reader, maxFrame int) core.FrameReader {
	limit := core.LimitOrDefault(maxFrame)
	return &nsReader{br: bufio.NewReaderSize(r, limit+16), limit: limit}
}

type nsReader struct {
	br    *bufio.Reader
	limit int
	last  int // bytes of the previous frame still to discard
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("netstring: "+format+": %w", append(args, core.ErrMalformedFrame)...)
}

func (r *nsReader) ReadFrame() ([]byte, error) {
	r.br.Discard(r.last)
	r.last = 0
	digits := len(strconv.Itoa(r.limit))
	var head []byte
	var err error
	for n := 1; ; n++ { // the length and its ':', peeked a byte more each time
		head, err = r.br.Peek(n)
		if err != nil {
			if err == io.EOF && len(head) > 0 {
				return nil, &core.TruncatedFrameError{Codec: "netstring", Have: int64(len(head))}
			}
			return nil, err
		}
		c := head[n-1]
		if c == ':' {
			break
		}
		if c < '0' || c > '9' {
			return nil, malformed("byte %q in the length", c)
		}
		if n > digits {
			size, _ := strconv.ParseInt(string(head[:min(n, 18)]), 10, 64)
			return nil, &core.FrameTooLargeError{Codec: "netstring", Size: size, Limit: r.limit}
		}
	}
	size, err := strconv.Atoi(string(head[:len(head)-1]))
	if err != nil || len(head) == 1 {
		return nil, malformed("empty length")
	}
	if size > r.limit {
		return nil, &core.FrameTooLargeError{Codec: "netstring", Size: int64(size), Limit: r.limit}
	}
	total := len(head) + size + 1
	frame, err := r.br.Peek(total)
	if err != nil {
		if err == io.EOF {
			return nil, &core.TruncatedFrameError{Codec: "netstring", Have: int64(len(frame)), Want: int64(total)}
		}
		return nil, err
	}
	if frame[total-1] != ',' {
		return nil, malformed("frame not ended by ','")
	}
	r.last = total
	return frame[len(head) : total-1], nil
}

func TestNetstringPasses(t *testing.T) { codectest.Run(t, netstring{}) }

func TestNetstringSaysMalformed(t *testing.T) {
	for _, in := range []string{"x:", "5:hello;", ":", "3x:abc,"} {
		_, err := netstring{}.NewReader(bytes.NewReader([]byte(in)), 0).ReadFrame()
		if !errors.Is(err, core.ErrMalformedFrame) {
			t.Errorf("%q: got %v, want ErrMalformedFrame", in, err)
		}
	}
}
