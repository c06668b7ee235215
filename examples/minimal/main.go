// Command minimal shows tether as a library in one page: it serves a hub on
// a loopback TCP port with the length codec, connects two clients, and has
// them exchange a few messages, printing what each receives.
//
//	go run ./examples/minimal
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/tetherkit/tether/core"

	_ "github.com/tetherkit/tether/codecs/all"
	_ "github.com/tetherkit/tether/transports/all"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Pick a transport and a codec by name, as a configuration file would.
	target, err := core.Resolve(core.Transports, "tcp://127.0.0.1:0", "")
	if err != nil {
		log.Fatal(err)
	}
	codec, err := core.Codecs.Lookup("length")
	if err != nil {
		log.Fatal(err)
	}

	// The hub.
	l, err := target.Listen(ctx)
	if err != nil {
		log.Fatal(err)
	}
	srv := &core.Server{}
	go srv.Serve(l, codec)
	defer srv.Shutdown(ctx)

	// Two clients.
	alice, err := core.Dial(ctx, target.Transport, l.Addr().String(), codec, 0)
	if err != nil {
		log.Fatal(err)
	}
	bob, err := core.Dial(ctx, target.Transport, l.Addr().String(), codec, 0)
	if err != nil {
		log.Fatal(err)
	}
	for len(srv.Peers()) < 2 { // both in the room before anyone speaks
		if ctx.Err() != nil {
			log.Fatal("the clients never joined the room")
		}
		time.Sleep(time.Millisecond)
	}

	alice.Send([]byte("hi bob"))
	msg, err := bob.Receive()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob received: %s\n", msg)

	bob.Send([]byte("hi alice, binary is fine too: \x00\n"))
	msg, err = alice.Receive()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("alice received: %q\n", msg)

	// A graceful close: everything sent is delivered before the end.
	alice.Shutdown(ctx)
	bob.Shutdown(ctx)
}
