package core

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrServerClosed is returned by [Server.Serve] after [Server.Shutdown] or
// [Server.Close].
var ErrServerClosed = errors.New("tether: server closed")

// ErrFrameTooLarge is matched (with errors.Is) by every [FrameTooLargeError].
var ErrFrameTooLarge = errors.New("frame too large")

// ErrTruncatedFrame is matched by every [TruncatedFrameError].
var ErrTruncatedFrame = errors.New("truncated frame")

// ErrUnrepresentable is returned by [Codec.AppendFrame] when a message cannot
// be carried by that codec (for example a message containing a newline on the
// line codec).
var ErrUnrepresentable = errors.New("message cannot be framed by this codec")

// ErrStalled is matched by the error a peer is disconnected with when it made no
// progress reading for the server's stall timeout.
var ErrStalled = errors.New("peer stopped reading")

// FrameTooLargeError reports a frame whose size exceeds the reader's limit.
// Size is the announced or observed size in bytes (for a line, a lower bound:
// the bytes seen without finding its end).
type FrameTooLargeError struct {
	Codec string // codec name, such as "length"
	Size  int64  // bytes announced or seen
	Limit int    // the maximum frame size in force
	Hint  string // what the peer probably is, or ""
}

// Error describes the failure with its figures.
func (e *FrameTooLargeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s codec: frame of %d bytes exceeds the limit of %d bytes", e.Codec, e.Size, e.Limit)
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Is reports whether target is [ErrFrameTooLarge].
func (e *FrameTooLargeError) Is(target error) bool { return target == ErrFrameTooLarge }

// TruncatedFrameError reports a stream that ended in the middle of a frame.
type TruncatedFrameError struct {
	Codec string // codec name
	Have  int64  // bytes of the frame received (header included)
	Want  int64  // bytes the frame needed (header included)
}

// Error describes the failure with its figures.
func (e *TruncatedFrameError) Error() string {
	return fmt.Sprintf("%s codec: stream ended mid-frame after %d of %d bytes", e.Codec, e.Have, e.Want)
}

// Is reports whether target is [ErrTruncatedFrame].
func (e *TruncatedFrameError) Is(target error) bool { return target == ErrTruncatedFrame }

// Unwrap returns [io.ErrUnexpectedEOF].
func (e *TruncatedFrameError) Unwrap() error { return io.ErrUnexpectedEOF }

// UnknownNameError reports a transport or codec name that is not registered.
type UnknownNameError struct {
	Kind  string   // "transport" or "codec"
	Name  string   // the name asked for
	Known []string // the registered names, sorted
}

// Error describes the failure with its figures.
func (e *UnknownNameError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("unknown %s %q: none is registered (import github.com/tetherkit/tether/%ss/all)", e.Kind, e.Name, e.Kind)
	}
	return fmt.Sprintf("unknown %s %q; valid choices: %s", e.Kind, e.Name, strings.Join(e.Known, ", "))
}

// StallError is the reason a receiver was disconnected for making no progress.
type StallError struct {
	Timeout string // the stall timeout, formatted
	Queued  int    // messages still queued for the peer
}

// Error describes the failure with its figures.
func (e *StallError) Error() string {
	return fmt.Sprintf("peer read nothing for %s with %d messages queued; disconnected so the room can move on", e.Timeout, e.Queued)
}

// Is reports whether target is [ErrStalled].
func (e *StallError) Is(target error) bool { return target == ErrStalled }

// LimitError reports a peer disconnected or refused because a limit
// tripped: a handshake, idle or write timeout.
type LimitError struct {
	What  string // "handshake", "idle timeout", "write timeout"
	Limit string // the limit in force, formatted
	Err   error  // the underlying error
}

// Error names the limit and its figure.
func (e *LimitError) Error() string {
	return fmt.Sprintf("%s of %s exceeded: %v", e.What, e.Limit, e.Err)
}

// Unwrap returns the underlying error.
func (e *LimitError) Unwrap() error { return e.Err }

// ErrReadBudget is matched by every [BudgetError].
var ErrReadBudget = errors.New("read budget spent")

// BudgetError refuses a client's large frame because the server's read
// budget (the bytes all clients' large partial frames may hold) is spent.
type BudgetError struct {
	Need  int   // bytes asked for
	InUse int64 // bytes held by other clients' frames in flight
	Limit int64 // the budget
}

// Error names the figures and what to change.
func (e *BudgetError) Error() string {
	return fmt.Sprintf("read budget spent: %d bytes asked, %d of %d held by large frames in flight (many clients are sending large frames at once, or holding them half-sent): raise --read-budget or lower --max-frame",
		e.Need, e.InUse, e.Limit)
}

// Is reports whether target is [ErrReadBudget].
func (e *BudgetError) Is(target error) bool { return target == ErrReadBudget }
