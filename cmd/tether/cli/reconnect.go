package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/tetherkit/tether/core"
)

// connectReconnecting is "connect --reconnect": pipe semantics over a
// core.Redialer, which survives the hub going away. Input waits in a bounded
// outbox while disconnected; standard error says when the hub is lost and
// when it is back.
func (a *App) connectReconnecting(ctx context.Context, f *connectFlags, tgt core.Target, codec core.Codec) error {
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(a.Stderr, "%s: "+format+"\n", append([]any{a.Name}, args...)...)
	}
	everConnected := false
	r := &core.Redialer{
		Dial: func(ctx context.Context) (net.Conn, error) {
			dctx, cancel := context.WithTimeout(ctx, f.timeout)
			defer cancel()
			return tgt.Dial(dctx)
		},
		Codec:    codec,
		MaxFrame: int(f.maxFrame),
		Outbox:   f.outbox,
		OnLost: func(err error, queued int) {
			say("lost the hub at %s (%v); reconnecting, %d messages wait in the outbox", tgt, explainShort(err), queued)
		},
		OnConnected: func(_ net.Conn, failed int) {
			if everConnected || failed > 0 {
				say("connected to %s after %d failed attempts", tgt, failed)
			}
			everConnected = true
		},
		OnOutboxFull: func(n int) {
			say("the outbox is full (%d messages): input waits until the hub takes more", n)
		},
	}
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx) }()
	printed := make(chan error, 1)
	go func() {
		out := bufio.NewWriter(a.Stdout)
		defer out.Flush()
		for {
			m, err := r.Receive()
			if err != nil {
				printed <- nil
				return
			}
			out.Write(m)
			out.WriteByte('\n')
			if err := out.Flush(); err != nil {
				printed <- err
				return
			}
		}
	}()
	if !f.recvOnly {
		lr := newLineReader(a.Stdin, int(f.maxFrame))
		for {
			line, err := lr.next()
			if line != nil {
				if serr := r.Send(ctx, line); serr != nil {
					break
				}
			}
			if errors.Is(err, io.EOF) {
				r.CloseSend()
				break
			}
			if err != nil {
				return err
			}
		}
	}
	err := <-runDone
	if perr := <-printed; perr != nil {
		return fmt.Errorf("writing standard output: %w", perr)
	}
	return a.ended(ctx, err)
}

// explainShort keeps the first line of an explained error.
func explainShort(err error) string {
	s := err.Error()
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
