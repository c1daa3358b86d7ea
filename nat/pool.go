package nat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// ErrNoPortAvailable means every port of the range is leased or in use.
var ErrNoPortAvailable = errors.New("nat: no passive port available")

// Pool hands out the ports of a range, one lease per port. Ports are tried
// round-robin so that a port just released is the last to be handed out
// again. A Pool is safe for concurrent use.
type Pool struct {
	rng PortRange

	mu     sync.Mutex
	leased map[uint16]bool
	next   int // offset of the next port to try
}

// NewPool returns a pool over r. r must be valid.
func NewPool(r PortRange) *Pool {
	return &Pool{rng: r, leased: make(map[uint16]bool, r.Size())}
}

// Range returns the pool's port range.
func (p *Pool) Range() PortRange { return p.rng }

// InUse returns how many ports are leased.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.leased)
}

// Listen leases a free port of the range and listens on ip:port. Ports that
// another process holds are skipped. It fails with ErrNoPortAvailable when
// every port is leased or busy.
func (p *Pool) Listen(ctx context.Context, ip netip.Addr) (*Lease, error) {
	var lc net.ListenConfig
	n := p.rng.Size()
	for range n {
		port, ok := p.reserve()
		if !ok {
			break
		}
		addr := netip.AddrPortFrom(ip, port)
		ln, err := lc.Listen(ctx, "tcp", addr.String())
		if err != nil {
			p.release(port)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue // busy in another process, try the next one
		}
		return &Lease{pool: p, port: port, ln: ln.(*net.TCPListener)}, nil
	}
	return nil, fmt.Errorf("%w in %s", ErrNoPortAvailable, p.rng)
}

// reserve marks the next free port as leased.
func (p *Pool) reserve() (uint16, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.rng.Size()
	for i := range n {
		off := (p.next + i) % n
		port := p.rng.Low + uint16(off)
		if !p.leased[port] {
			p.leased[port] = true
			p.next = (off + 1) % n
			return port, true
		}
	}
	return 0, false
}

func (p *Pool) release(port uint16) {
	p.mu.Lock()
	delete(p.leased, port)
	p.mu.Unlock()
}

// Lease is one port of a Pool with its listener.
type Lease struct {
	pool *Pool
	port uint16
	ln   *net.TCPListener

	once sync.Once
}

// Port returns the leased port.
func (l *Lease) Port() uint16 { return l.port }

// Listener returns the lease's listener.
func (l *Lease) Listener() *net.TCPListener { return l.ln }

// StopListening closes the listener but keeps the port leased, so that it is
// not handed to another session while this transfer runs.
func (l *Lease) StopListening() { _ = l.ln.Close() }

// Release closes the listener and returns the port to the pool. It is
// idempotent. Connections already accepted stay open.
func (l *Lease) Release() {
	l.once.Do(func() {
		_ = l.ln.Close()
		l.pool.release(l.port)
	})
}
