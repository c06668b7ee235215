// Command tether carries messages between processes: a hub ("tether serve")
// and its clients ("tether connect") over unix sockets, TCP, or any
// registered transport. See the README for a tour.
package main

import (
	"os"

	"github.com/tetherkit/tether/cmd/tether/cli"
)

func main() { os.Exit(cli.Main()) }
