package core

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Sentinels. Every error the engine reports for a limit or a refusal
// matches one of them with errors.Is, and is a typed error (below) that
// carries the figures: callers never need to read an error's text.
var (
	// ErrServerClosed is returned by [Server.Serve] after [Server.Shutdown]
	// or [Server.Close], and by calls on a closed [Server].
	ErrServerClosed = errors.New("tether: server closed")

	// ErrFrameTooLarge is matched by every [FrameTooLargeError].
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrTruncatedFrame is matched by every [TruncatedFrameError].
	ErrTruncatedFrame = errors.New("truncated frame")
	// ErrMalformedFrame is matched by the error a [FrameReader] returns for
	// bytes that break its codec's syntax (a netstring without its ':', a
	// bad length digit), as opposed to a frame that is merely too large.
	ErrMalformedFrame = errors.New("malformed frame")
	// ErrUnrepresentable is returned by [Codec.AppendFrame] when a message
	// cannot be carried by that codec (for example a message containing a
	// newline on the line codec).
	ErrUnrepresentable = errors.New("message cannot be framed by this codec")

	// ErrStalled is matched by every [StallError]: a peer made no progress
	// reading for the server's stall timeout.
	ErrStalled = errors.New("peer stopped reading")
	// ErrIdleTimeout, ErrWriteTimeout and ErrHandshakeTimeout are matched by
	// the [TimeoutError] of that limit.
	ErrIdleTimeout      = errors.New("idle timeout")
	ErrWriteTimeout     = errors.New("write timeout")
	ErrHandshakeTimeout = errors.New("handshake timeout")
	// ErrHandshake is matched by every [HandshakeError].
	ErrHandshake = errors.New("handshake failed")
	// ErrTooManyPeers is matched by every [PeerLimitError].
	ErrTooManyPeers = errors.New("too many peers")
	// ErrReadBudget is matched by every [BudgetError].
	ErrReadBudget = errors.New("read budget spent")
	// ErrRefused is matched by every [RefusedError]: an admission rule said
	// no.
	ErrRefused = errors.New("refused")
	// ErrNotDelivered is returned by [Server.Broadcast] when no connected
	// peer could be sent the message (see [UndeliverableError]).
	ErrNotDelivered = errors.New("message not delivered")
	// ErrNotListening is what a transport's Dial wraps when nobody listens
	// at the address yet (a VM still booting, a service not started), so
	// that a [Bridge] tries again within its dial timeout. A socket's own
	// "not there yet" errors (ECONNREFUSED, ENOENT, EHOSTUNREACH and the
	// like) count as it without wrapping.
	ErrNotListening = errors.New("nobody listens there yet")
)

// FrameTooLargeError reports a frame whose size exceeds the reader's limit.
// Size is the announced or observed size in bytes (for a line, a lower bound:
// the bytes seen without finding its end).
type FrameTooLargeError struct {
	Codec string // codec name, such as "length"
	Size  int64  // bytes announced or seen
	Limit int    // the maximum frame size in force
	// Hint says what the peer probably is, in the library's terms, or "".
	Hint string
	// PeerCodec names the codec the bytes suggest the peer speaks instead
	// (such as "line"), or "".
	PeerCodec string
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
	Want  int64  // bytes the frame needed (header included), or 0 if unknown
}

// Error describes the failure with its figures.
func (e *TruncatedFrameError) Error() string {
	if e.Want <= 0 {
		return fmt.Sprintf("%s codec: stream ended mid-frame after %d bytes", e.Codec, e.Have)
	}
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
		return fmt.Sprintf("unknown %s %q: none is registered; register one, or import the package that registers it", e.Kind, e.Name)
	}
	return fmt.Sprintf("unknown %s %q; valid choices: %s", e.Kind, e.Name, strings.Join(e.Known, ", "))
}

// StallError is the reason a receiver was disconnected for making no progress.
type StallError struct {
	Timeout time.Duration // the stall timeout in force
	Queued  int           // messages still queued for the peer
}

// Error describes the failure with its figures.
func (e *StallError) Error() string {
	return fmt.Sprintf("peer read nothing for %v with %d messages queued; disconnected so the room can move on", e.Timeout, e.Queued)
}

// Is reports whether target is [ErrStalled].
func (e *StallError) Is(target error) bool { return target == ErrStalled }

// TimeoutError reports a peer disconnected because a time limit passed:
// Limit is [ErrIdleTimeout], [ErrWriteTimeout] or [ErrHandshakeTimeout].
type TimeoutError struct {
	Limit   error         // which limit: one of the sentinels above
	Timeout time.Duration // the limit in force
	Err     error         // the underlying error
}

// Error names the limit and its figure.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%v of %v exceeded: %v", e.Limit, e.Timeout, e.Err)
}

// Is reports whether target is the limit that tripped.
func (e *TimeoutError) Is(target error) bool { return target == e.Limit }

// Unwrap returns the underlying error.
func (e *TimeoutError) Unwrap() error { return e.Err }

// HandshakeError reports a transport handshake that failed before its time
// was up (a certificate refused, a protocol error).
type HandshakeError struct {
	Err error
}

// Error names the failure.
func (e *HandshakeError) Error() string { return "handshake failed: " + e.Err.Error() }

// Is reports whether target is [ErrHandshake].
func (e *HandshakeError) Is(target error) bool { return target == ErrHandshake }

// Unwrap returns the handshake's error.
func (e *HandshakeError) Unwrap() error { return e.Err }

// PeerLimitError refuses a connection because the server has as many peers
// as it may hold.
type PeerLimitError struct {
	Limit int // the server's MaxConns in force
}

// Error names the limit.
func (e *PeerLimitError) Error() string {
	return fmt.Sprintf("too many peers: the limit of %d is reached", e.Limit)
}

// Is reports whether target is [ErrTooManyPeers].
func (e *PeerLimitError) Is(target error) bool { return target == ErrTooManyPeers }

// BudgetError refuses a client's large frame because the server's read
// budget (the bytes all clients' large partial frames may hold) is spent.
type BudgetError struct {
	Need  int   // bytes asked for
	InUse int64 // bytes held by other clients' frames in flight
	Limit int64 // the budget
}

// Error names the figures and what to change.
func (e *BudgetError) Error() string {
	return fmt.Sprintf("read budget spent: %d bytes asked, %d of %d held by large frames in flight (many peers are sending large frames at once, or holding them half-sent): raise the server's read budget or lower its frame limit",
		e.Need, e.InUse, e.Limit)
}

// Is reports whether target is [ErrReadBudget].
func (e *BudgetError) Is(target error) bool { return target == ErrReadBudget }

// RefusedError reports a peer refused by an admission rule: its listener's
// (see [Admitter]) or the server's own [Server.Admit].
type RefusedError struct {
	Err error // the rule's answer
}

// Error gives the rule's answer.
func (e *RefusedError) Error() string { return "refused: " + e.Err.Error() }

// Is reports whether target is [ErrRefused].
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Unwrap returns the rule's answer.
func (e *RefusedError) Unwrap() error { return e.Err }

// UndeliverableError reports a message that reached no peer because none of
// the codecs in use could carry it.
type UndeliverableError struct {
	Peers int     // peers connected
	Errs  []error // each codec's refusal (each wraps ErrUnrepresentable)
}

// Error names the figures and the codecs' reasons.
func (e *UndeliverableError) Error() string {
	return fmt.Sprintf("message not delivered: none of the %d connected peers' codecs can carry it: %v", e.Peers, errors.Join(e.Errs...))
}

// Is reports whether target is [ErrNotDelivered] or [ErrUnrepresentable].
func (e *UndeliverableError) Is(target error) bool {
	return target == ErrNotDelivered || target == ErrUnrepresentable
}

// OptionError reports a transport option that was refused: an unknown name,
// or a value that does not parse.
type OptionError struct {
	Transport string // the transport's name
	Option    string // the option's name
	Value     string // the value given
	Err       error  // what is wrong
}

// Error names the transport, the option and the problem.
func (e *OptionError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: option %s: %v", e.Transport, e.Option, e.Err)
	}
	return fmt.Sprintf("%s: option %s=%q: %v", e.Transport, e.Option, e.Value, e.Err)
}

// Unwrap returns what is wrong.
func (e *OptionError) Unwrap() error { return e.Err }

// NotSupportedError reports a transport, or one ability of it, that this
// operating system does not provide (vsock outside Linux, peer credentials
// where the kernel gives none). It matches [errors.ErrUnsupported].
type NotSupportedError struct {
	What string // "vsock", "peer credentials"
	OS   string // runtime.GOOS
}

// Error says what is missing and where.
func (e *NotSupportedError) Error() string {
	return fmt.Sprintf("%s: not supported on this system (%s)", e.What, e.OS)
}

// Is reports whether target is [errors.ErrUnsupported].
func (e *NotSupportedError) Is(target error) bool { return target == errors.ErrUnsupported }
