package cli

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// writePrintable writes msg as is when it is printable UTF-8 (tabs allowed),
// and as a Go-quoted string otherwise.
func writePrintable(w *bufio.Writer, msg []byte) {
	if printable(msg) {
		w.Write(msg)
		return
	}
	w.WriteString(strconv.Quote(string(msg)))
}

func printable(msg []byte) bool {
	if !utf8.Valid(msg) {
		return false
	}
	for _, c := range msg {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// lineReader splits input into messages at '\n' only: every other byte,
// '\r' included, is part of the message; a last line without '\n' is a
// message too.
type lineReader struct {
	r     *bufio.Reader
	limit int
	n     int // lines read, for error messages
}

func newLineReader(r io.Reader, limit int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), limit: limit}
}

// next returns the next line without its '\n'. The slice is valid until the
// next call. At the end it returns io.EOF (with a final unterminated line,
// if any, in the same call).
func (l *lineReader) next() ([]byte, error) {
	var long []byte
	for {
		chunk, err := l.r.ReadSlice('\n')
		switch err {
		case nil:
			l.n++
			line := chunk[:len(chunk)-1]
			if long != nil {
				line = append(long, line...)
			}
			if err := l.check(line); err != nil {
				return nil, err
			}
			return line, nil
		case bufio.ErrBufferFull:
			long = append(long, chunk...)
			if len(long) > l.limit {
				l.n++
				return nil, l.check(long)
			}
		default:
			line := append(long, chunk...)
			if len(line) == 0 {
				return nil, err
			}
			l.n++
			if cerr := l.check(line); cerr != nil {
				return nil, cerr
			}
			return line, err
		}
	}
}

func (l *lineReader) check(line []byte) error {
	if len(line) > l.limit {
		return fmt.Errorf("input line %d is longer than --max-frame (%d bytes); raise --max-frame or split the line", l.n, l.limit)
	}
	return nil
}

// pending reports whether input is already buffered, so a caller can batch
// messages and flush only when none is waiting.
func (l *lineReader) pending() bool { return l.r.Buffered() > 0 }
