package core

import (
	"sync"
	"sync/atomic"
)

// frame is one message encoded for one codec. Every receiver's queue shares
// the same frame, read-only; a reference count returns it to a pool once
// the last receiver has written it, so the steady state allocates nothing.
type frame struct {
	buf  []byte
	refs atomic.Int32
}

// maxPooledFrame keeps very large frames out of the pool: the pool should
// not pin memory that one big message needed once.
const maxPooledFrame = 64 << 10

var framePool = sync.Pool{New: func() any { return new(frame) }}

// newFrame returns an empty frame holding one reference.
func newFrame() *frame {
	f := framePool.Get().(*frame)
	f.buf = f.buf[:0]
	f.refs.Store(1)
	return f
}

// hold adds a reference.
func (f *frame) hold() { f.refs.Add(1) }

// release drops a reference; the last one returns the frame to the pool.
// A reference never released only costs the pool a frame: the garbage
// collector takes it.
func (f *frame) release() {
	if f.refs.Add(-1) == 0 && cap(f.buf) <= maxPooledFrame {
		framePool.Put(f)
	}
}

// frames caches one message's encodings during a broadcast: it is encoded
// once per codec in use, on first need.
type frames struct {
	from    *Peer  // nil when given with Server.BroadcastFrom
	name    string // then, the sender's name
	payload []byte
	enc     []*frame
	done    []bool
}

func (m *frames) sender() string {
	switch {
	case m.from != nil:
		return m.from.Name()
	case m.name != "":
		return m.name
	}
	return HostName
}

// reset prepares the cache for one message and n codecs.
func (m *frames) reset(from *Peer, payload []byte, n int) {
	m.from, m.payload = from, payload
	if cap(m.enc) < n {
		m.enc, m.done = make([]*frame, n), make([]bool, n)
	}
	m.enc, m.done = m.enc[:n], m.done[:n]
	clear(m.enc)
	clear(m.done)
}

// get returns the message encoded for the codec at idx, encoding it on first
// use. It returns nil and the codec's refusal (logged once per message) when
// the codec cannot carry the message.
func (m *frames) get(s *Server, idx int) (*frame, error) {
	if m.done[idx] {
		return m.enc[idx], nil
	}
	m.done[idx] = true
	codec := s.codecAt(idx)
	body := m.payload
	if s.Chat {
		body = m.chatBody()
	}
	f := newFrame()
	var err error
	f.buf, err = codec.AppendFrame(f.buf, body)
	if err != nil {
		f.release()
		s.log().Warn("message not delivered to clients of this codec", "from", m.sender(), "codec", codec.Name(), "error", err)
		return nil, err
	}
	m.enc[idx] = f
	return f, nil
}

// chatBody returns "name: payload", in the sender's reusable buffer.
func (m *frames) chatBody() []byte {
	name := m.sender()
	var buf []byte
	if m.from != nil {
		buf = m.from.chatBuf[:0]
	}
	buf = append(append(append(buf, name...), ": "...), m.payload...)
	if m.from != nil {
		m.from.chatBuf = buf
	}
	return buf
}

// releaseAll drops the broadcast's own reference to every frame it made.
func (m *frames) releaseAll() {
	for i, f := range m.enc {
		if m.done[i] && f != nil {
			f.release()
		}
	}
}
