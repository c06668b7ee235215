// Command vmchat is a chat between a virtual machine and its host, written
// on tether's library in one page: the host side runs a hub, the guest side
// dials it, and both send what is typed and print what arrives.
//
// On a QEMU/KVM host and its guest (CID 3):
//
//	host$  vmchat -listen vsock://any:5000
//	guest$ vmchat -dial vsock://host:5000
//
// On a Firecracker host, where the guest's vsock is the unix socket
// /run/fc/v.sock on the host:
//
//	host$  vmchat -listen hvsock:///run/fc/v.sock:5000   (guests dial host:5000)
//	host$  vmchat -dial hvsock:///run/fc/v.sock:6000     (a guest listens on 6000)
//	guest$ vmchat -dial vsock://host:5000
//	guest$ vmchat -listen vsock://any:6000
//
// See README.md beside this file for the whole walkthrough.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"

	_ "github.com/tetherkit/tether/transports/all"
)

func main() {
	listen := flag.String("listen", "", "run the hub on this endpoint (the host side, usually)")
	dial := flag.String("dial", "", "connect to a hub at this endpoint (the guest side, usually)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch {
	case *listen != "" && *dial == "":
		err = host(ctx, *listen)
	case *dial != "" && *listen == "":
		err = guest(ctx, *dial)
	default:
		err = fmt.Errorf("give -listen ENDPOINT or -dial ENDPOINT, such as vsock://any:5000 or vsock://host:5000")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmchat:", err)
		os.Exit(1)
	}
}

// host runs a hub: it prints who joins and what they say, and sends each
// typed line to everyone.
func host(ctx context.Context, endpoint string) error {
	target, err := core.Resolve(core.Transports, endpoint, "")
	if err != nil {
		return err
	}
	l, err := target.Listen(ctx)
	if err != nil {
		return err
	}
	srv := &core.Server{
		OnJoin:    func(p *core.Peer) { fmt.Printf("%s joined from %s\n", p.Name(), p.RemoteAddr()) },
		OnMessage: func(p *core.Peer, msg []byte) { fmt.Printf("%s: %s\n", p.RemoteAddr(), msg) },
		OnLeave:   func(p *core.Peer, err error) { fmt.Printf("%s left\n", p.Name()) },
	}
	go srv.Serve(l, line.Codec{})
	fmt.Printf("listening on %s; type to talk\n", target)
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			srv.Broadcast(in.Bytes())
		}
	}()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// guest dials the hub, prints what arrives and sends each typed line.
func guest(ctx context.Context, endpoint string) error {
	target, err := core.Resolve(core.Transports, endpoint, "")
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := target.Dial(dctx)
	cancel()
	if err != nil {
		return err
	}
	cl := core.NewClient(conn, line.Codec{}, 0)
	defer cl.Close()
	fmt.Printf("connected to %s; type to talk\n", target)
	received := make(chan struct{})
	go func() {
		defer close(received)
		for {
			msg, err := cl.Receive()
			if err != nil {
				fmt.Println("the host closed the chat")
				return
			}
			fmt.Printf("host: %s\n", msg)
		}
	}()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if err := cl.Send(in.Bytes()); err != nil {
			return err
		}
	}
	// End of input: everything typed is delivered, then the hub closes.
	if err := cl.CloseWrite(); err != nil {
		return err
	}
	select {
	case <-received:
	case <-time.After(5 * time.Second):
	}
	return nil
}
