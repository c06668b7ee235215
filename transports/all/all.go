// Package all registers every built-in transport in core.Transports:
//
//	import _ "github.com/tetherkit/tether/transports/all"
package all

import (
	_ "github.com/tetherkit/tether/transports/hvsock" // registers "hvsock"
	_ "github.com/tetherkit/tether/transports/tcp"    // registers "tcp"
	_ "github.com/tetherkit/tether/transports/tls"    // registers "tls"
	_ "github.com/tetherkit/tether/transports/unix"   // registers "unix"
	_ "github.com/tetherkit/tether/transports/vsock"  // registers "vsock"
)
