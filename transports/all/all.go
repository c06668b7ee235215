// Package all registers every built-in transport in core.Transports and makes
// "unix" the default (the transport of an empty address), or "systemd" when
// systemd started the process with sockets (socket activation):
//
//	import _ "github.com/tetherkit/tether/transports/all"
//
// A program that registers a transport of its own may make it the default
// after this import, with core.Transports.SetDefault.
package all

import (
	"github.com/tetherkit/tether/core"
	_ "github.com/tetherkit/tether/transports/exec"   // registers "exec"
	_ "github.com/tetherkit/tether/transports/hvsock" // registers "hvsock"
	_ "github.com/tetherkit/tether/transports/stdio"  // registers "stdio"
	"github.com/tetherkit/tether/transports/systemd"  // registers "systemd"
	_ "github.com/tetherkit/tether/transports/tcp"    // registers "tcp"
	_ "github.com/tetherkit/tether/transports/tlstcp" // registers "tls"
	"github.com/tetherkit/tether/transports/unix"     // registers "unix"
	_ "github.com/tetherkit/tether/transports/vsock"  // registers "vsock"
)

func init() {
	if systemd.Activated() {
		core.Transports.SetDefault(systemd.Name)
	} else {
		core.Transports.SetDefault(unix.Name)
	}
}
