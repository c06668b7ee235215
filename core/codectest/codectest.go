// Package codectest is the conformance suite every [core.Codec] runs. A codec
// package's test is one line:
//
//	func TestConformance(t *testing.T) { codectest.Run(t, mycodec.Codec{}) }
//
// What it checks:
//   - RoundTrip, OneByteReads, Random: awkward and random messages framed
//     with AppendFrame read back unchanged, whole or one byte at a time;
//     messages the codec refuses must be refused with core.ErrUnrepresentable
//     and leave dst unchanged.
//   - LimitExact, Oversized: a frame of exactly the limit is read; one byte
//     more is a *core.FrameTooLargeError with the size and the limit.
//   - Truncated: a stream cut anywhere in the last frame gives the earlier
//     messages, then io.EOF or core.ErrTruncatedFrame, never a wrong message.
//   - EndlessInput, Garbage: endless or random bytes end in an error after a
//     bounded read (core.ErrFrameTooLarge, or core.ErrMalformedFrame for a
//     codec with a syntax), never a panic or a buffer that grows forever.
//   - Socket: frames written to a real TCP connection in uneven pieces read
//     back through it, as the server reads them.
//   - DeadlineKeepsReader: a read deadline that passes mid-frame returns an
//     error matching os.ErrDeadlineExceeded, and the reader, given a new
//     deadline, goes on with nothing lost ([core.FrameReader]'s rule).
//   - AppendKeepsDst: AppendFrame appends to dst.
package codectest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"testing/iotest"
	"time"

	"github.com/tetherkit/tether/core"
)

// Messages is a set of awkward messages every codec is tried with. Messages a
// codec refuses with core.ErrUnrepresentable are skipped for it.
var Messages = [][]byte{
	[]byte("hi"),
	{},
	[]byte("how are you"),
	[]byte("ok bye"),
	[]byte("trailing cr\r"),
	[]byte("\r"),
	[]byte("\r\r"),
	[]byte("embedded\nnewline"),
	[]byte("\n"),
	{0, 0, 0, 4},
	[]byte("tab\tand unicode: héllo ✓"),
	bytes.Repeat([]byte{0xff}, 300),
	bytes.Repeat([]byte("x"), 70000),
}

// Run runs the conformance suite against c.
func Run(t *testing.T, c core.Codec) {
	t.Helper()
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, c) })
	t.Run("OneByteReads", func(t *testing.T) { testOneByte(t, c) })
	t.Run("Random", func(t *testing.T) { testRandom(t, c) })
	t.Run("LimitExact", func(t *testing.T) { testLimitExact(t, c) })
	t.Run("Oversized", func(t *testing.T) { testOversized(t, c) })
	t.Run("Truncated", func(t *testing.T) { testTruncated(t, c) })
	t.Run("EndlessInput", func(t *testing.T) { testEndless(t, c) })
	t.Run("Garbage", func(t *testing.T) { testGarbage(t, c) })
	t.Run("Socket", func(t *testing.T) { testSocket(t, c) })
	t.Run("DeadlineKeepsReader", func(t *testing.T) { testDeadline(t, c) })
	t.Run("AppendKeepsDst", func(t *testing.T) { testAppendKeepsDst(t, c) })
}

// encodable returns the messages of msgs that c can carry, and their encoding.
func encodable(t *testing.T, c core.Codec, msgs [][]byte) ([][]byte, []byte) {
	t.Helper()
	var ok [][]byte
	var wire []byte
	for _, m := range msgs {
		out, err := c.AppendFrame(wire, m)
		if errors.Is(err, core.ErrUnrepresentable) {
			if len(out) != len(wire) {
				t.Fatalf("AppendFrame(%q) refused the message but changed dst", m)
			}
			continue
		}
		if err != nil {
			t.Fatalf("AppendFrame(%q): %v", m, err)
		}
		wire = out
		ok = append(ok, m)
	}
	return ok, wire
}

// readAll decodes every frame of r, copying each.
func readAll(fr core.FrameReader) ([][]byte, error) {
	var got [][]byte
	for {
		m, err := fr.ReadFrame()
		if err != nil {
			return got, err
		}
		got = append(got, bytes.Clone(m))
	}
}

func check(t *testing.T, want, got [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("message %d: got %q, want %q", i, short(got[i]), short(want[i]))
		}
	}
}

func short(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q…(%d bytes)", b[:40], len(b))
	}
	return string(b)
}

func testRoundTrip(t *testing.T, c core.Codec) {
	want, wire := encodable(t, c, Messages)
	if len(want) < 5 {
		t.Fatalf("codec carries only %d of the %d sample messages", len(want), len(Messages))
	}
	got, err := readAll(c.NewReader(bytes.NewReader(wire), 0))
	if err != io.EOF {
		t.Fatalf("end of stream: got %v, want io.EOF", err)
	}
	check(t, want, got)
}

func testOneByte(t *testing.T, c core.Codec) {
	want, wire := encodable(t, c, Messages)
	got, err := readAll(c.NewReader(iotest.OneByteReader(bytes.NewReader(wire)), 0))
	if err != io.EOF {
		t.Fatalf("end of stream: got %v, want io.EOF", err)
	}
	check(t, want, got)
}

func testRandom(t *testing.T, c core.Codec) {
	rng := rand.New(rand.NewPCG(1, 2))
	var msgs [][]byte
	for range 2000 {
		m := make([]byte, rng.IntN(600))
		for i := range m {
			m[i] = byte(rng.IntN(256))
		}
		msgs = append(msgs, m)
	}
	want, wire := encodable(t, c, msgs)
	got, err := readAll(c.NewReader(iotest.HalfReader(bytes.NewReader(wire)), 0))
	if err != io.EOF {
		t.Fatalf("end of stream: got %v, want io.EOF", err)
	}
	check(t, want, got)
}

func testLimitExact(t *testing.T, c core.Codec) {
	const limit = 1000
	msg := bytes.Repeat([]byte("a"), limit)
	wire, err := c.AppendFrame(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(c.NewReader(bytes.NewReader(wire), limit))
	if err != io.EOF {
		t.Fatalf("a frame of exactly the limit: got %v, want it read and then io.EOF", err)
	}
	check(t, [][]byte{msg}, got)
}

func testOversized(t *testing.T, c core.Codec) {
	const limit = 1000
	wire, err := c.AppendFrame(nil, bytes.Repeat([]byte("a"), limit+1))
	if err != nil {
		t.Fatal(err)
	}
	wire, _ = c.AppendFrame(wire, []byte("next"))
	_, err = readAll(c.NewReader(bytes.NewReader(wire), limit))
	var tooLarge *core.FrameTooLargeError
	if !errors.As(err, &tooLarge) || !errors.Is(err, core.ErrFrameTooLarge) {
		t.Fatalf("frame of limit+1: got %v, want a *core.FrameTooLargeError", err)
	}
	if tooLarge.Limit != limit || tooLarge.Size <= limit {
		t.Fatalf("error figures: size %d limit %d, want size > %d and limit %d", tooLarge.Size, tooLarge.Limit, limit, limit)
	}
}

// testTruncated cuts the stream at every point inside the last frame: what is
// read must be the earlier messages, then (for codecs that allow an
// unterminated last frame) a prefix of the last message, then an error that is
// io.EOF or a core.ErrTruncatedFrame — never a wrong message.
func testTruncated(t *testing.T, c core.Codec) {
	first := []byte("first")
	last := []byte("the last message")
	wire, _ := c.AppendFrame(nil, first)
	cut := len(wire)
	wire, _ = c.AppendFrame(wire, last)
	for end := cut + 1; end < len(wire); end++ {
		got, err := readAll(c.NewReader(bytes.NewReader(wire[:end]), 0))
		if err != io.EOF && !errors.Is(err, core.ErrTruncatedFrame) {
			t.Fatalf("cut at %d of %d: got error %v, want io.EOF or ErrTruncatedFrame", end, len(wire), err)
		}
		if errors.Is(err, core.ErrTruncatedFrame) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: a truncated frame error should unwrap to io.ErrUnexpectedEOF", end)
		}
		if len(got) == 0 || !bytes.Equal(got[0], first) || len(got) > 2 {
			t.Fatalf("cut at %d: got %q, want %q and at most a prefix of the next", end, got, first)
		}
		if len(got) == 2 && !bytes.HasPrefix(last, got[1]) {
			t.Fatalf("cut at %d: second message %q is not a prefix of %q", end, got[1], last)
		}
	}
}

// countingReader counts the bytes handed out.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type repeatReader byte

func (b repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// testEndless feeds endless garbage: the reader must fail after reading a
// bounded amount, not buffer forever.
func testEndless(t *testing.T, c core.Codec) {
	const limit = 64 << 10
	for _, b := range []byte{'A', 0xff, 0x00} {
		cr := &countingReader{r: repeatReader(b)}
		fr := c.NewReader(cr, limit)
		var err error
		for i := 0; i < 1<<20 && err == nil; i++ {
			_, err = fr.ReadFrame()
		}
		if err == nil {
			continue // endless valid frames (for example empty ones) are not an attack on memory
		}
		if !errors.Is(err, core.ErrFrameTooLarge) && !errors.Is(err, core.ErrMalformedFrame) {
			t.Errorf("endless %#x: got %v, want ErrFrameTooLarge or ErrMalformedFrame", b, err)
		}
		if cr.n > 2*limit+64<<10 {
			t.Errorf("endless %#x: read %d bytes before refusing, want at most about the limit %d", b, cr.n, limit)
		}
	}
}

func testAppendKeepsDst(t *testing.T, c core.Codec) {
	dst := []byte("prefix")
	out, err := c.AppendFrame(dst, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte("prefix")) || len(out) <= len(dst) {
		t.Fatalf("AppendFrame must append to dst: got %q", out)
	}
}

// testGarbage feeds random bytes: the reader returns frames or ends in one
// of the errors a codec may give, after a bounded read.
func testGarbage(t *testing.T, c core.Codec) {
	const limit = 4 << 10
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		junk := make([]byte, rng.IntN(3*limit))
		for i := range junk {
			junk[i] = byte(rng.IntN(256))
		}
		fr := c.NewReader(bytes.NewReader(junk), limit)
		var err error
		for frames := 0; err == nil; frames++ {
			var m []byte
			m, err = fr.ReadFrame()
			if err == nil && len(m) > limit {
				t.Fatalf("a frame of %d bytes from garbage, over the limit %d", len(m), limit)
			}
			if frames > len(junk)+1 {
				t.Fatalf("%d frames from %d bytes of garbage: the reader does not advance", frames, len(junk))
			}
		}
		switch {
		case err == io.EOF, errors.Is(err, core.ErrFrameTooLarge), errors.Is(err, core.ErrMalformedFrame), errors.Is(err, core.ErrTruncatedFrame):
		default:
			t.Fatalf("garbage ended in %v, want io.EOF, ErrFrameTooLarge, ErrMalformedFrame or ErrTruncatedFrame", err)
		}
	}
}

// socketPair returns the two ends of a loopback TCP connection.
func socketPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	d, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var a net.Conn
	select {
	case a = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out after 10s waiting for the accepted connection")
	}
	if a == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { d.Close(); a.Close() })
	return d, a
}

// testSocket writes frames to a real socket in uneven pieces and reads them
// through the socket, as the server does.
func testSocket(t *testing.T, c core.Codec) {
	w, r := socketPair(t)
	want, wire := encodable(t, c, append(append([][]byte(nil), Messages...), bytes.Repeat([]byte("y"), 300<<10)))
	go func() {
		rng := rand.New(rand.NewPCG(5, 6))
		for len(wire) > 0 {
			n := min(len(wire), 1+rng.IntN(9000))
			if _, err := w.Write(wire[:n]); err != nil {
				return
			}
			wire = wire[n:]
		}
		w.(*net.TCPConn).CloseWrite()
	}()
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := readAll(c.NewReader(r, 1<<20))
	if err != io.EOF {
		t.Fatalf("end of stream: got %v, want io.EOF", err)
	}
	check(t, want, got)
}

// testDeadline: a passed read deadline, mid-frame and between frames,
// leaves the reader usable, with nothing lost.
func testDeadline(t *testing.T, c core.Codec) {
	w, r := socketPair(t)
	first, second := []byte("before the pause"), bytes.Repeat([]byte("z"), 5000)
	wire, err := c.AppendFrame(nil, first)
	if err != nil {
		t.Fatal(err)
	}
	wire, _ = c.AppendFrame(wire, second)
	cut := len(wire) - len(second)/2 // inside the second frame
	fr := c.NewReader(r, 0)
	if _, err := w.Write(wire[:cut]); err != nil {
		t.Fatal(err)
	}
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	if m, err := fr.ReadFrame(); err != nil || !bytes.Equal(m, first) {
		t.Fatalf("first frame: %q, %v", m, err)
	}
	for range 2 { // twice: the reader must survive more than one timeout
		r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := fr.ReadFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("reading a half-arrived frame past the deadline: got %v, want an error matching os.ErrDeadlineExceeded", err)
		}
	}
	if _, err := w.Write(wire[cut:]); err != nil {
		t.Fatal(err)
	}
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	if m, err := fr.ReadFrame(); err != nil || !bytes.Equal(m, second) {
		t.Fatalf("after the deadline passed and was extended, the frame read %d bytes, %v; want the %d bytes sent", len(m), err, len(second))
	}
	r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := fr.ReadFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("reading between frames past the deadline: got %v, want os.ErrDeadlineExceeded", err)
	}
	third := []byte("after")
	wire, _ = c.AppendFrame(nil, third)
	w.Write(wire)
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	if m, err := fr.ReadFrame(); err != nil || !bytes.Equal(m, third) {
		t.Fatalf("after a timeout between frames: %q, %v", m, err)
	}
}
