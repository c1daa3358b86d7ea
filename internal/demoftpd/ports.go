package demoftpd

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"syscall"
)

var errNoFreePort = errors.New("no free passive port")

// portRange is an inclusive range of passive ports; the zero value lets the
// kernel pick an ephemeral port.
type portRange struct{ lo, hi int }

func parsePortRange(s string) (portRange, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return portRange{}, nil
	}
	los, his, ok := strings.Cut(s, "-")
	if !ok {
		return portRange{}, fmt.Errorf("%q: want LOW-HIGH", s)
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(los))
	hi, err2 := strconv.Atoi(strings.TrimSpace(his))
	if err := errors.Join(err1, err2); err != nil {
		return portRange{}, fmt.Errorf("%q: %w", s, err)
	}
	if lo < 1 || hi > 65535 || lo > hi {
		return portRange{}, fmt.Errorf("%q: want 1 <= LOW <= HIGH <= 65535", s)
	}
	return portRange{lo: lo, hi: hi}, nil
}

// listen opens a passive listener on ip, on a free port of the range, trying
// every port once starting from a random one.
func (r portRange) listen(ip net.IP) (*net.TCPListener, error) {
	if r.lo == 0 {
		return net.ListenTCP("tcp", &net.TCPAddr{IP: ip})
	}
	n := r.hi - r.lo + 1
	start := rand.IntN(n)
	for i := range n {
		port := r.lo + (start+i)%n
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
		if err == nil {
			return ln, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w in %d-%d", errNoFreePort, r.lo, r.hi)
}
