// Package all registers every built-in codec in core.Codecs:
//
//	import _ "github.com/tetherkit/tether/codecs/all"
package all

import (
	_ "github.com/tetherkit/tether/codecs/length" // registers "length"
	_ "github.com/tetherkit/tether/codecs/line"   // registers "line"
)
