package vsock

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

// TestErrorsSayWhatToDo checks the hints for errors this machine cannot
// produce for real (it has a vsock device, and must never dial).
func TestErrorsSayWhatToDo(t *testing.T) {
	a := &Addr{CID: 3, Port: 5000}
	tests := []struct {
		op   string
		err  error
		is   error
		hint string
	}{
		{"listen", syscall.EAFNOSUPPORT, ErrNoDevice, "vhost_vsock"},
		{"dial", syscall.ENODEV, ErrNoDevice, "vmw_vsock_virtio_transport"},
		{"dial", syscall.ECONNRESET, syscall.ECONNRESET, "start a listener on any:5000 there"},
		{"dial", syscall.ECONNREFUSED, syscall.ECONNREFUSED, "nobody is listening on vsock port 5000 at CID 3"},
		{"dial", syscall.EHOSTUNREACH, syscall.EHOSTUNREACH, "cannot be reached"},
		{"listen", syscall.EADDRNOTAVAIL, syscall.EADDRNOTAVAIL, "listen on any:5000 instead"},
		{"listen", syscall.EADDRINUSE, syscall.EADDRINUSE, "choose another port"},
	}
	for _, tt := range tests {
		err := explain(tt.op, a, tt.err)
		if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.hint) {
			t.Errorf("%s %v: got %q, want it to match %v and say %q", tt.op, tt.err, err, tt.is, tt.hint)
		}
	}
}
