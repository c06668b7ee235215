// Package vmtest holds the vsock tests that run inside throwaway virtual
// machines booted by .ci/vsock-vm. Each test skips unless the VM's init sets
// TETHER_VSOCK_VM to its role:
//
//   - "loopback": a guest whose only vsock transport is vsock_loopback; the
//     hub and its clients all run in it and talk over CID 1.
//   - "host": the outer VM of a nested pair, playing the host (CID 2). It
//     runs hubs, boots the inner guest with QEMU, and talks to it.
//   - "guest": the inner VM (CID 3), a real vsock guest of that host.
//
// TETHER_BIN names the tether binary to drive. Nothing here runs on the test
// machine itself: a vsock dial there would reach the real hypervisor.
package vmtest
