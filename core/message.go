package core

// frames caches one message's encodings during a broadcast: the message is
// encoded once per codec in use, and every receiver's queue shares that
// read-only frame; no receiver gets a copy of its own.
type frames struct {
	from    *Peer // nil when the host (Server.Broadcast) sent it
	payload []byte
	enc     [][]byte
	done    []bool
}

func (m *frames) sender() string {
	if m.from == nil {
		return HostName
	}
	return m.from.Name()
}

// get returns the message encoded for the codec at idx, encoding it on first
// use. It returns nil (and logs) when the codec cannot carry the message.
func (m *frames) get(s *Server, idx int) []byte {
	if m.done[idx] {
		return m.enc[idx]
	}
	m.done[idx] = true
	codec := s.codecAt(idx)
	body := m.payload
	if s.Chat {
		name := m.sender()
		body = make([]byte, 0, len(name)+2+len(m.payload))
		body = append(append(append(body, name...), ": "...), m.payload...)
	}
	f, err := codec.AppendFrame(nil, body)
	if err != nil {
		s.log().Warn("message not delivered to clients of this codec", "from", m.sender(), "codec", codec.Name(), "error", err)
		return nil
	}
	m.enc[idx] = f
	return f
}
