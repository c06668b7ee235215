package cli

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// appendPrintable appends msg as is when it is printable UTF-8 (tabs
// allowed), and as a Go-quoted string otherwise.
func appendPrintable(dst, msg []byte) []byte {
	if printable(msg) {
		return append(dst, msg...)
	}
	return strconv.AppendQuote(dst, string(msg))
}

func printable(msg []byte) bool {
	// Plain printable ASCII is checked 32 bytes at a time: for each byte x,
	// x - 0x20 borrows (its high bit set, x not) when x < 0x20, and x + 1 or
	// x has the high bit when x >= 0x7f. A flagged word, and the tail, are
	// looked at byte by byte (tabs are fine; bytes from 0x80 need a UTF-8
	// check of the whole message).
	const ones, highs, spaces = 0x0101010101010101, 0x8080808080808080, 0x2020202020202020
	flag := func(v uint64) uint64 { return ((v-spaces)&^v | (v + ones) | v) & highs }
	ascii, rest := true, msg
	for len(rest) >= 32 {
		a, b := binary.LittleEndian.Uint64(rest), binary.LittleEndian.Uint64(rest[8:])
		c, d := binary.LittleEndian.Uint64(rest[16:]), binary.LittleEndian.Uint64(rest[24:])
		if flag(a)|flag(b)|flag(c)|flag(d) != 0 {
			if !plainBytes(rest[:32], &ascii) {
				return false
			}
		}
		rest = rest[32:]
	}
	if !plainBytes(rest, &ascii) {
		return false
	}
	return ascii || utf8.Valid(msg)
}

// plainBytes reports whether b has no control byte but tab, and clears
// ascii when it has a byte from 0x80.
func plainBytes(b []byte, ascii *bool) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
		if c >= 0x80 {
			*ascii = false
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

// errLineTooLong is matched by the error for an input line over the limit;
// the line has been skipped, and reading may go on.
var errLineTooLong = errors.New("input line too long")

// next returns the next line without its '\n'. The slice is valid until the
// next call. At the end it returns io.EOF (with a final unterminated line,
// if any, in the same call). A line over the limit is skipped whole and
// reported with an error matching errLineTooLong.
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
			if len(line) > l.limit {
				return nil, l.tooLong(len(line))
			}
			return line, nil
		case bufio.ErrBufferFull:
			long = append(long, chunk...)
			if len(long) > l.limit {
				l.n++
				seen := len(long)
				for err == bufio.ErrBufferFull { // skip the rest of the line
					chunk, err = l.r.ReadSlice('\n')
					seen += len(chunk)
				}
				return nil, l.tooLong(seen)
			}
		default:
			line := append(long, chunk...)
			if len(line) == 0 {
				return nil, err
			}
			l.n++
			if len(line) > l.limit {
				return nil, l.tooLong(len(line))
			}
			return line, err
		}
	}
}

func (l *lineReader) tooLong(size int) error {
	return fmt.Errorf("input line %d is %d bytes or more, longer than --max-frame (%d bytes); raise --max-frame or split the line: %w", l.n, size, l.limit, errLineTooLong)
}

// pending reports whether input is already buffered, so a caller can batch
// messages and flush only when none is waiting.
func (l *lineReader) pending() bool { return l.r.Buffered() > 0 }
