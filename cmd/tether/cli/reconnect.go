package cli

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/tetherkit/tether/core"
)

// connectReconnecting is "connect --reconnect": the same session (chat,
// pipe or listener) over a core.Redialer, which survives the hub going
// away. Input waits in a bounded outbox while disconnected; standard error
// says when the hub is lost and when it is back.
func (a *App) connectReconnecting(ctx context.Context, f *connectFlags, tgt core.Target, codec core.Codec, interactive bool) error {
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lead := ""
		if interactive {
			lead = "\r\033[K" // over the prompt
		}
		fmt.Fprintf(a.Stderr, lead+"%s: "+format+"\n", append([]any{a.Name}, args...)...)
	}
	everConnected := false
	r := &core.Redialer{
		Dial: func(ctx context.Context) (net.Conn, error) {
			dctx, cancel := context.WithTimeout(ctx, f.timeout.v)
			defer cancel()
			return tgt.Dial(dctx)
		},
		Codec:       codec,
		MaxFrame:    int(f.maxFrame.v),
		Outbox:      f.outbox.v,
		OutboxBytes: f.outboxBytes.v,
		OnLost: func(err error, queued int) {
			say("lost the hub at %s (%s); reconnecting, %d messages wait in the outbox", tgt, firstLine(err), queued)
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
	err := a.session(ctx, f, redialLink{r: r, ctx: ctx}, interactive)
	if runErr := <-runDone; err == nil {
		err = a.ended(ctx, runErr)
	}
	return err
}

// redialLink adapts a core.Redialer to a session's link.
type redialLink struct {
	r   *core.Redialer
	ctx context.Context
}

func (l redialLink) Queue(msg []byte) error   { return l.r.Send(l.ctx, msg) }
func (l redialLink) Flush() error             { return nil }
func (l redialLink) Send(msg []byte) error    { return l.r.Send(l.ctx, msg) }
func (l redialLink) CloseWrite() error        { l.r.CloseSend(); return nil }
func (l redialLink) Receive() ([]byte, error) { return l.r.Receive() }
func (l redialLink) Buffered() int            { return 0 }

// firstLine keeps the first line of an explained error.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
