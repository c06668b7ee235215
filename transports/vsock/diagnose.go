package vsock

import (
	"context"
	"fmt"
	"os"

	"github.com/mdlayher/vsock"

	"github.com/tetherkit/tether/core"
)

// Diagnose reports the vsock device, the local CID (asked of the kernel,
// never by dialing), the guest and host sides, and loopback.
func (Transport) Diagnose(context.Context) []core.Finding {
	if err := supported(); err != nil {
		return []core.Finding{{Topic: "support", Text: err.Error()}}
	}
	var out []core.Finding
	add := func(topic, format string, args ...any) {
		out = append(out, core.Finding{Topic: topic, Text: fmt.Sprintf(format, args...)})
	}
	_, devErr := os.Stat("/dev/vsock")
	if devErr != nil {
		add("device", "/dev/vsock absent: no vsock here. A guest needs a virtio vsock device (vmw_vsock_virtio_transport); a host needs vhost_vsock (modprobe vhost_vsock)")
	} else {
		add("device", "/dev/vsock present")
	}
	if cid, err := vsock.ContextID(); err == nil {
		role := "a guest: dial the host with vsock://host:PORT"
		switch cid {
		case Host:
			role = "the host: dial a guest with vsock://CID:PORT"
		case Local:
			role = "loopback only"
		}
		add("local CID", "%d (%s)", cid, role)
	} else if devErr == nil {
		add("local CID", "unknown (%v)", err)
	}
	module := func(name string) bool { _, err := os.Stat("/sys/module/" + name); return err == nil }
	if module("vmw_vsock_virtio_transport") {
		add("guest side", "virtio transport loaded (this machine is a VM guest)")
	} else {
		add("guest side", "no virtio vsock transport loaded")
	}
	if module("vsock_loopback") {
		add("loopback", "vsock_loopback loaded: local:PORT stays on this machine")
	} else {
		add("loopback", "vsock_loopback not loaded: do not dial local:PORT here, it would go to the hypervisor (modprobe vsock_loopback)")
	}
	if _, err := os.Stat("/dev/vhost-vsock"); err == nil {
		add("host side", "/dev/vhost-vsock present: this machine can run vsock guests (QEMU: -device vhost-vsock-pci,guest-cid=3)")
	} else {
		add("host side", "/dev/vhost-vsock absent: this machine cannot give guests vsock (modprobe vhost_vsock)")
	}
	return out
}
