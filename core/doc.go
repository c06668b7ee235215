// Package core is tether's messaging engine.
//
// It defines the two plug-in points, [Transport] (how bytes move: listen and
// dial, producing a [net.Listener] and a [net.Conn]) and [Codec] (how messages
// are framed on a byte stream), the [Registry] that holds them by name, the
// endpoint grammar ([ParseEndpoint]), the [Server] that runs a chat hub over any
// number of listeners, and the [Client].
//
// Transports and codecs live in their own packages and register themselves in
// [Transports] and [Codecs] from init, so a program blank-imports the ones it
// wants (or github.com/tetherkit/tether/transports/all and
// github.com/tetherkit/tether/codecs/all). A program may also skip the
// registries and hand values in directly.
//
// Contracts:
//   - A [Server] may serve many listeners at once; every message a client sends
//     reaches every other client of the server, in the sender's order, byte-exact.
//   - A slow receiver slows the senders (the hub stops reading from them) and
//     loses nothing; a receiver that makes no progress at all for
//     [Server.StallTimeout] is disconnected.
//   - All exported methods of [Server] are safe for concurrent use. A [Client]
//     allows one goroutine sending and one receiving at a time.
package core
