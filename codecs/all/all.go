// Package all registers every built-in codec in core.Codecs and makes "line"
// the default:
//
//	import _ "github.com/tetherkit/tether/codecs/all"
package all

import (
	_ "github.com/tetherkit/tether/codecs/length" // registers "length"
	"github.com/tetherkit/tether/codecs/line"     // registers "line"
	"github.com/tetherkit/tether/core"
)

func init() { core.Codecs.SetDefault(line.Name) }
