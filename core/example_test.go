package core_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/transports/unix"
)

// A hub on a unix socket and two clients: what one says, the other hears.
func ExampleServer() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "chat.sock")

	l, err := unix.Transport{}.Listen(context.Background(), sock)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &core.Server{Chat: true}
	go srv.Serve(l, line.Codec{})
	defer srv.Close()

	ctx := context.Background()
	a, _ := core.Dial(ctx, unix.Transport{}, sock, line.Codec{}, 0)
	b, _ := core.Dial(ctx, unix.Transport{}, sock, line.Codec{}, 0)
	for deadline := time.Now().Add(10 * time.Second); len(srv.Peers()) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			fmt.Println("the clients never joined")
			return
		}
	}
	a.Send([]byte("hi"))
	msg, _ := b.Receive()
	fmt.Printf("%s\n", msg)
	// Output: #1: hi
}

// Looking up a name that is not registered lists the valid ones.
func ExampleRegistry_Lookup() {
	_, err := core.Codecs.Lookup("json")
	fmt.Println(err)
	// Output: unknown codec "json"; valid choices: length, line
}

// An endpoint says transport and address in one string.
func ExampleParseEndpoint() {
	ep, _ := core.ParseEndpoint("unix:///run/chat.sock")
	fmt.Println(ep.Transport, ep.Address)
	// Output: unix /run/chat.sock
}
