package cli

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/transports/unix"
	"github.com/tetherkit/tether/transports/vsock"
)

// access holds the --allow-* rules. An empty list allows everyone on that
// transport; a rule applies only to peers of its own transport.
type access struct {
	uids, gids, cids numList
	nets             netList
}

// admit checks a peer's identity against the rules.
func (a *access) admit(p *core.Peer) error {
	switch r := p.RemoteAddr().(type) {
	case *unix.PeerAddr:
		if len(a.uids) > 0 || len(a.gids) > 0 {
			if !slices.Contains(a.uids, uint64(r.UID)) && !slices.Contains(a.gids, uint64(r.GID)) {
				return fmt.Errorf("uid %d / gid %d is not allowed (--allow-uid %s --allow-gid %s)", r.UID, r.GID, a.uids.String(), a.gids.String())
			}
		}
	case *vsock.PeerAddr:
		if len(a.cids) > 0 && !slices.Contains(a.cids, uint64(r.CID)) {
			return fmt.Errorf("CID %d is not allowed (--allow-cid %s)", r.CID, a.cids.String())
		}
	case *net.TCPAddr:
		if len(a.nets) > 0 && !a.nets.contains(r.IP) {
			return fmt.Errorf("address %s is not allowed (--allow-net %s)", r.IP, a.nets.String())
		}
	}
	return nil
}

func (a *access) empty() bool {
	return len(a.uids) == 0 && len(a.gids) == 0 && len(a.cids) == 0 && len(a.nets) == 0
}

// numList is a repeatable, comma-separated flag of unsigned numbers.
type numList []uint64

func (l *numList) String() string {
	parts := make([]string, len(*l))
	for i, n := range *l {
		parts[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(parts, ",")
}

func (l *numList) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(part), 10, 32)
		if err != nil {
			return fmt.Errorf("want numbers such as 1000 or 1000,1001")
		}
		*l = append(*l, n)
	}
	return nil
}

// netList is a repeatable, comma-separated flag of CIDR ranges or addresses.
type netList []*net.IPNet

func (l *netList) String() string {
	parts := make([]string, len(*l))
	for i, n := range *l {
		parts[i] = n.String()
	}
	return strings.Join(parts, ",")
}

func (l *netList) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if !strings.Contains(part, "/") {
			if ip := net.ParseIP(part); ip != nil {
				bits := 128
				if ip.To4() != nil {
					bits = 32
				}
				part = fmt.Sprintf("%s/%d", part, bits)
			}
		}
		_, n, err := net.ParseCIDR(part)
		if err != nil {
			return fmt.Errorf("want address ranges such as 127.0.0.0/8 or 10.1.2.3")
		}
		*l = append(*l, n)
	}
	return nil
}

func (l netList) contains(ip net.IP) bool {
	for _, n := range l {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}
