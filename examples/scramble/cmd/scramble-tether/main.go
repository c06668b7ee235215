// Command scramble-tether is the whole tether command line with one more
// transport, scramble, registered by this program: tether's CLI does not
// know its name, and offers its options as flags, its default address, and
// its admission rule all the same.
//
//	scramble-tether serve --transport scramble --scramble-allow alice,bob
//	echo hi | scramble-tether connect --transport scramble --scramble-name alice
package main

import (
	"os"

	"example.com/scramble"
	"github.com/tetherkit/tether/cmd/tether/cli"
	"github.com/tetherkit/tether/core"
)

func main() {
	core.Transports.Register(scramble.Transport{})
	os.Exit(cli.Main())
}
