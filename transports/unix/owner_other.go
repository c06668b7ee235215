//go:build !unix

package unix

import (
	"os"
	"runtime"

	"github.com/tetherkit/tether/core"
)

var goos = runtime.GOOS

func ownedByMe(os.FileInfo) bool { return true }

func lookupGroup(string) (int, error) {
	return 0, &core.NotSupportedError{What: "unix: socket-group", OS: goos}
}
