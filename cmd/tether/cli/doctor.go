package cli

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	mdvsock "github.com/mdlayher/vsock"

	"github.com/tetherkit/tether/transports/unix"
	"github.com/tetherkit/tether/transports/vsock"
)

// doctor reports what this machine supports, before the user tries. It
// reads files and asks the kernel for the local CID; it never dials.
func (a *App) doctor(_ context.Context, args []string) error {
	fs := a.newFlagSet("doctor", "Say what this machine supports: unix socket limits, vsock (device, local CID,\n"+
		"loopback, host side), and hybrid vsock sockets of Firecracker or Cloud Hypervisor. It never dials anything.")
	hvDir := fs.String("hvsock-dir", "", "look for hybrid vsock sockets (Firecracker uds_path) under this folder")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	w := a.Stdout
	fmt.Fprintf(w, "%s doctor: what this machine supports (nothing is dialed)\n\n", a.Name)
	fmt.Fprintf(w, "transports: %s\ncodecs:     %s\n\n", joinNames(a.Transports.Names()), joinNames(a.Codecs.Names()))
	doctorUnix(w)
	doctorVsock(w)
	doctorHybrid(w, *hvDir)
	return nil
}

func doctorUnix(w io.Writer) {
	def := defaultSocketPath()
	fmt.Fprintf(w, "unix\n  path limit:     %d bytes (abstract names: %d)\n  default socket: %s", unix.MaxPathLen, unix.MaxPathLen+1, def)
	if fi, err := os.Lstat(def); err == nil && fi.Mode().Type() == os.ModeSocket {
		fmt.Fprintf(w, " (a socket file exists, mode %v)", fi.Mode().Perm())
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
}

func doctorVsock(w io.Writer) {
	fmt.Fprintln(w, "vsock")
	_, devErr := os.Stat("/dev/vsock")
	if devErr != nil {
		fmt.Fprintln(w, "  device:         /dev/vsock absent: no vsock here. A guest needs a virtio vsock device")
		fmt.Fprintln(w, "                  (vmw_vsock_virtio_transport); a host needs vhost_vsock (modprobe vhost_vsock).")
	} else {
		fmt.Fprintln(w, "  device:         /dev/vsock present")
	}
	if cid, err := mdvsock.ContextID(); err == nil {
		role := "a guest: dial the host with vsock://host:PORT"
		switch cid {
		case vsock.Host:
			role = "the host: dial a guest with vsock://CID:PORT"
		case vsock.Local:
			role = "loopback only"
		}
		fmt.Fprintf(w, "  local CID:      %d (%s)\n", cid, role)
	} else if devErr == nil {
		fmt.Fprintf(w, "  local CID:      unknown (%v)\n", err)
	}
	mod := func(name string) bool { _, err := os.Stat("/sys/module/" + name); return err == nil }
	yes := func(b bool, y, n string) string {
		if b {
			return y
		}
		return n
	}
	fmt.Fprintf(w, "  guest side:     %s\n", yes(mod("vmw_vsock_virtio_transport"), "virtio transport loaded (this machine is a VM guest)", "no virtio vsock transport loaded"))
	fmt.Fprintf(w, "  loopback:       %s\n", yes(mod("vsock_loopback"), "vsock_loopback loaded: local:PORT stays on this machine",
		"vsock_loopback not loaded: do not dial local:PORT here, it would go to the hypervisor (modprobe vsock_loopback)"))
	_, vhostErr := os.Stat("/dev/vhost-vsock")
	fmt.Fprintf(w, "  host side:      %s\n", yes(vhostErr == nil, "/dev/vhost-vsock present: this machine can run vsock guests (QEMU: -device vhost-vsock-pci,guest-cid=3)",
		"/dev/vhost-vsock absent: this machine cannot give guests vsock (modprobe vhost_vsock)"))
	fmt.Fprintln(w)
}

// doctorHybrid lists unix sockets that look like a VMM's vsock socket
// (PATH) and its guest-initiated listeners (PATH_PORT).
func doctorHybrid(w io.Writer, dir string) {
	fmt.Fprintln(w, "hvsock (Firecracker, Cloud Hypervisor)")
	if dir == "" {
		fmt.Fprintln(w, "  give --hvsock-dir DIR to look for VMM sockets (Firecracker's uds_path) under DIR")
		return
	}
	socks := map[string]bool{}
	root := filepath.Clean(dir)
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
		fmt.Fprintf(w, "  no unix sockets under %s\n", dir)
		return
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
	for _, p := range names {
		fmt.Fprintf(w, "  %s: dial a guest port with hvsock://%s:PORT", p, p)
		if len(ports[p]) > 0 {
			sort.Strings(ports[p])
			fmt.Fprintf(w, "; listeners for guest connections on ports %s", strings.Join(ports[p], ", "))
		}
		fmt.Fprintln(w)
	}
}
