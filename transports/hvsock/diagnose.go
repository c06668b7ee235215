package hvsock

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tetherkit/tether/core"
)

// Diagnose lists the unix sockets under Dir that look like a VMM's vsock
// socket (PATH) and its guest-initiated listeners (PATH_PORT).
func (t Transport) Diagnose(context.Context) []core.Finding {
	if t.Dir == "" {
		return []core.Finding{{Topic: "sockets", Text: "give the hvsock-dir option to look for VMM sockets (Firecracker's uds_path) under a folder"}}
	}
	socks := map[string]bool{}
	root := filepath.Clean(t.Dir)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && strings.Count(strings.TrimPrefix(p, root), string(filepath.Separator)) > 3 {
			return filepath.SkipDir
		}
		if d.Type() == fs.ModeSocket {
			socks[p] = true
		}
		return nil
	})
	if len(socks) == 0 {
		return []core.Finding{{Topic: "sockets", Text: "no unix sockets under " + t.Dir}}
	}
	ports := map[string][]string{} // base socket -> guest-initiated ports with a listener
	for p := range socks {
		i := strings.LastIndexByte(p, '_')
		if i > 0 && socks[p[:i]] {
			if _, err := strconv.ParseUint(p[i+1:], 10, 32); err == nil {
				ports[p[:i]] = append(ports[p[:i]], p[i+1:])
				continue
			}
		}
		if _, ok := ports[p]; !ok {
			ports[p] = nil
		}
	}
	names := make([]string, 0, len(ports))
	for p := range ports {
		names = append(names, p)
	}
	sort.Strings(names)
	var out []core.Finding
	for _, p := range names {
		text := fmt.Sprintf("dial a guest port with hvsock://%s:PORT", p)
		if len(ports[p]) > 0 {
			sort.Strings(ports[p])
			text += "; listeners for guest connections on ports " + strings.Join(ports[p], ", ")
		}
		out = append(out, core.Finding{Topic: p, Text: text})
	}
	return out
}
