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

// ErrClientLimit means the client's address holds as many leases as the
// pool allows one address.
var ErrClientLimit = errors.New("nat: too many passive ports held by this address")

// Pool hands out the ports of a range, one lease per port. Ports are tried
// round-robin so that a port just released is the last to be handed out
// again. A Pool is safe for concurrent use.
type Pool struct {
	rng       PortRange
	perClient int // leases one client address may hold at once; 0: no cap

	mu       sync.Mutex
	leased   map[uint16]bool
	next     int                // offset of the next port to try
	byClient map[netip.Addr]int // leases held per client address; no zero entries
}

// NewPool returns a pool over r. r must be valid. perClient caps the leases
// one client address holds at once (see Listen); 0 means no cap.
func NewPool(r PortRange, perClient int) *Pool {
	return &Pool{rng: r, perClient: max(perClient, 0), leased: make(map[uint16]bool, r.Size()),
		byClient: make(map[netip.Addr]int)}
}

// Leased reports whether port is leased (the gateway listens there, or is
// about to).
func (p *Pool) Leased(port uint16) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leased[port]
}

// HeldBy returns how many leases client holds.
func (p *Pool) HeldBy(client netip.Addr) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byClient[clientKey(client)]
}

func clientKey(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// Range returns the pool's port range.
func (p *Pool) Range() PortRange { return p.rng }

// InUse returns how many ports are leased.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.leased)
}

// Listen leases a free port of the range for client and listens on
// ip:port. Ports that another process holds are skipped. It fails with
// ErrClientLimit when client holds its share of leases already, and with
// ErrNoPortAvailable when every port is leased or busy. An invalid client
// (an exempt one) is not counted.
func (p *Pool) Listen(ctx context.Context, ip, client netip.Addr) (*Lease, error) {
	if client.IsValid() {
		client = clientKey(client)
		if err := p.hold(client); err != nil {
			return nil, err
		}
	}
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
				p.unhold(client)
				return nil, ctx.Err()
			}
			continue // busy in another process, try the next one
		}
		return &Lease{pool: p, port: port, client: client, ln: ln.(*net.TCPListener)}, nil
	}
	p.unhold(client)
	return nil, fmt.Errorf("%w in %s", ErrNoPortAvailable, p.rng)
}

// hold counts one more lease for client, within the cap.
func (p *Pool) hold(client netip.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.perClient > 0 && p.byClient[client] >= p.perClient {
		return fmt.Errorf("%w (%s holds %d)", ErrClientLimit, client, p.byClient[client])
	}
	p.byClient[client]++
	return nil
}

// unhold gives back one of client's leases; the entry goes at zero.
func (p *Pool) unhold(client netip.Addr) {
	if !client.IsValid() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byClient[client] <= 1 {
		delete(p.byClient, client)
	} else {
		p.byClient[client]--
	}
}

// clients returns how many client addresses hold leases (tests: eviction).
func (p *Pool) clients() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byClient)
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
	pool   *Pool
	port   uint16
	client netip.Addr // counted against the pool's per-client cap; invalid: not counted
	ln     *net.TCPListener

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
		l.pool.unhold(l.client)
	})
}
