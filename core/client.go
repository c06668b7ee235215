package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Client is one connection to a hub (or any peer speaking the same codec).
// One goroutine may send (Send, Queue, Flush, CloseWrite, Shutdown) while
// another receives (Receive); neither side takes a lock, so neither is for
// concurrent use by itself. Close may be called at any time, from any
// goroutine; every call after it returns [net.ErrClosed].
type Client struct {
	conn     net.Conn
	codec    Codec
	fr       FrameReader
	buffered Buffered // fr's, or nil
	maxFrame int

	wbuf []byte // frames queued for the next write (the sending side's alone)

	closed    atomic.Bool
	closeOnce sync.Once
}

// Dial connects to address over transport t and returns a client speaking
// codec c. address is in t's own form, or an endpoint naming t
// ("tcp://127.0.0.1:7000", with t's options in its query). maxFrame bounds
// the messages sent and received (0 means [DefaultMaxFrame]).
func Dial(ctx context.Context, t Transport, address string, c Codec, maxFrame int) (*Client, error) {
	if t == nil || c == nil {
		return nil, errors.New("tether: Dial needs a transport and a codec (look them up in core.Transports and core.Codecs, or pass values such as tcp.Transport{} and line.Codec{})")
	}
	if maxFrame < 0 {
		return nil, fmt.Errorf("tether: Dial: maxFrame is %d: use 0 for the default or a positive size", maxFrame)
	}
	t, address, err := endpointFor(t, address)
	if err != nil {
		return nil, err
	}
	conn, err := t.Dial(ctx, address)
	if err != nil {
		return nil, err
	}
	return NewClient(conn, c, maxFrame), nil
}

// endpointFor accepts address in t's own form or as an endpoint naming t,
// and returns t configured with the endpoint's options.
func endpointFor(t Transport, address string) (Transport, string, error) {
	ep, err := ParseEndpoint(address)
	if err != nil || ep.Transport == "" {
		return t, address, err
	}
	if ep.Transport != t.Name() {
		return nil, "", fmt.Errorf("address %q names transport %q, but the transport given is %q: drop the scheme or pass that transport", address, ep.Transport, t.Name())
	}
	if _, ok := ep.Options[CodecKey]; ok {
		return nil, "", fmt.Errorf("address %q: the codec is Dial's argument, not an option of the address", address)
	}
	if len(ep.Options) > 0 {
		c, ok := t.(Configurable)
		if !ok {
			return nil, "", &OptionError{Transport: t.Name(), Option: firstKey(ep.Options), Err: errors.New("this transport takes no options")}
		}
		if t, err = c.Configure(ep.Options); err != nil {
			return nil, "", err
		}
	}
	return t, ep.Address, nil
}

func firstKey[V any](m map[string]V) string {
	for k := range m {
		return k
	}
	return ""
}

// NewClient wraps an established connection. The client owns conn from now
// on and closes it. maxFrame bounds the messages sent and received (0
// means [DefaultMaxFrame]).
func NewClient(conn net.Conn, c Codec, maxFrame int) *Client {
	limit := LimitOrDefault(maxFrame)
	cl := &Client{conn: conn, codec: c, maxFrame: limit}
	if conn != nil && c != nil {
		cl.fr = c.NewReader(conn, limit)
		cl.buffered, _ = cl.fr.(Buffered)
	}
	return cl
}

// errNoConn is what a Client not made by Dial or NewClient answers.
var errNoConn = errors.New("tether: this Client has no connection: make one with Dial or NewClient")

// unusable reports why the client cannot be used, or nil.
func (c *Client) unusable() error {
	switch {
	case c == nil || c.conn == nil || c.codec == nil || c.fr == nil:
		return errNoConn
	case c.closed.Load():
		return net.ErrClosed
	}
	return nil
}

// Conn returns the underlying connection, for deadlines and addresses.
func (c *Client) Conn() net.Conn { return c.conn }

// MaxFrame returns the largest message the client sends or receives.
func (c *Client) MaxFrame() int {
	if c == nil {
		return 0
	}
	return c.maxFrame
}

// Send frames msg and writes it, with anything queued before it, at once.
func (c *Client) Send(msg []byte) error {
	if err := c.Queue(msg); err != nil {
		return err
	}
	return c.flush()
}

// Queue frames msg into the send buffer without writing it; Flush (or the
// next Send, or CloseWrite) writes it. Queue several messages and flush once
// to send them in one system call. The buffer is written in whole chunks of
// writeChunk bytes as it fills, like a bufio.Writer.
//
// A message larger than the client's frame limit is refused with a
// [*FrameTooLargeError], and one the codec cannot carry with an error
// wrapping [ErrUnrepresentable]; nothing is sent for either, and the client
// stays usable.
func (c *Client) Queue(msg []byte) error {
	if c == nil || c.fr == nil || c.closed.Load() { // fr is set only with a connection and a codec
		return c.unusable()
	}
	if len(msg) >= bigMessage || len(msg) > c.maxFrame {
		return c.queueBig(msg)
	}
	b, err := c.codec.AppendFrame(c.wbuf, msg)
	if err != nil {
		return err
	}
	c.wbuf = b
	if len(b) >= writeChunk {
		return c.writeChunks()
	}
	return nil
}

// Flush writes every queued message.
func (c *Client) Flush() error {
	if err := c.unusable(); err != nil {
		return err
	}
	return c.flush()
}

// bigMessage is the size from which a message is not framed into the buffer
// in one piece but streamed through it (SplitFrame): its full chunks go to
// the socket straight from where the message lies.
const bigMessage = 32 << 10

// writeChunk is the unit of the client's writes: socket buffers take whole
// 64 KiB writes much faster than ones a few bytes longer.
const writeChunk = 64 << 10

// queueBig refuses a message over the frame limit, and streams a large one.
func (c *Client) queueBig(msg []byte) error {
	if len(msg) > c.maxFrame {
		return &FrameTooLargeError{Codec: c.codec.Name(), Size: int64(len(msg)), Limit: c.maxFrame,
			Hint: "refused before sending: a peer with the same limit would disconnect"}
	}
	if sp, ok := c.codec.(FrameSplitter); ok {
		return c.queueLarge(sp, msg)
	}
	b, err := c.codec.AppendFrame(c.wbuf, msg)
	if err != nil {
		return err
	}
	c.wbuf = b
	return c.writeChunks()
}

// queueLarge streams the header, msg and the trailer through the buffer.
func (c *Client) queueLarge(sp FrameSplitter, msg []byte) error {
	head, trailer, err := sp.SplitFrame(c.wbuf, msg)
	if err != nil {
		return err
	}
	c.wbuf = head
	if err := c.put(msg); err != nil {
		return err
	}
	c.wbuf = append(c.wbuf, trailer...)
	if len(c.wbuf) >= writeChunk {
		return c.writeChunks()
	}
	return nil
}

// put appends p to the buffer, writing whole chunks as they fill; full
// chunks of p are written from p itself when the buffer is empty.
func (c *Client) put(p []byte) error {
	for len(p) > 0 {
		if len(c.wbuf) == 0 && len(p) >= writeChunk {
			if _, err := c.conn.Write(p[:writeChunk]); err != nil {
				return c.ioErr(err)
			}
			p = p[writeChunk:]
			continue
		}
		k := min(writeChunk-len(c.wbuf), len(p))
		c.wbuf = append(c.wbuf, p[:k]...)
		p = p[k:]
		if len(c.wbuf) >= writeChunk {
			if err := c.writeChunks(); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeChunks writes the whole chunks of the buffer and keeps the rest.
func (c *Client) writeChunks() error {
	n := len(c.wbuf) - len(c.wbuf)%writeChunk
	if _, err := c.conn.Write(c.wbuf[:n]); err != nil {
		return c.ioErr(err)
	}
	rest := copy(c.wbuf, c.wbuf[n:])
	c.wbuf = c.wbuf[:rest]
	return nil
}

func (c *Client) flush() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	_, err := c.conn.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	if cap(c.wbuf) > 4*writeChunk {
		c.wbuf = nil // do not keep a huge buffer after one large message
	}
	return c.ioErr(err)
}

// ioErr reports net.ErrClosed, plainly, for I/O that failed because the
// client was closed.
func (c *Client) ioErr(err error) error {
	if err != nil && c.closed.Load() {
		return net.ErrClosed
	}
	return err
}

// Receive returns the next message. The slice is valid until the next call
// to Receive. At the end of the stream it returns io.EOF.
func (c *Client) Receive() ([]byte, error) {
	if err := c.unusable(); err != nil {
		return nil, err
	}
	m, err := c.fr.ReadFrame()
	return m, c.ioErr(err)
}

// Buffered returns the number of received bytes not yet returned by Receive,
// or 0 when the codec's reader does not say (see [Buffered]).
func (c *Client) Buffered() int {
	if c == nil || c.buffered == nil {
		return 0
	}
	return c.buffered.Buffered()
}

// CloseWrite flushes and ends the sending side: the peer reads everything
// sent, then end of stream. Receive keeps working until the peer closes.
// Connections without half-close support are closed whole.
func (c *Client) CloseWrite() error {
	if err := c.Flush(); err != nil {
		return err
	}
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		return c.ioErr(cw.CloseWrite())
	}
	return c.Close()
}

// Shutdown closes gracefully when nobody is receiving: it flushes, ends the
// sending side, then reads and drops incoming messages until the peer closes
// (which a tether hub does once it has taken everything sent) or ctx ends,
// and closes. A nil result means the peer acknowledged the end of the
// stream. When another goroutine is receiving, call CloseWrite instead and
// let that goroutine see io.EOF.
func (c *Client) Shutdown(ctx context.Context) error {
	if err := c.unusable(); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		c.Close()
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	defer c.Close()
	for {
		if _, err := c.fr.ReadFrame(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// Close closes the connection at once; queued messages are dropped. It is
// idempotent: the first call returns the connection's Close error, later
// calls nil.
func (c *Client) Close() error {
	if c == nil || c.conn == nil {
		return nil
	}
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		err = c.conn.Close()
	})
	return err
}
