package tunnel

import (
	"net/netip"
	"sync"
)

// fromSet counts an agent's open streams by the local address of their
// connections to the destinations, as the agent replied: the Hub sends a
// session's data connections to the agent whose connection the session's
// control connection is (pick). Agents on different hosts connect from
// different addresses, and an FTP server refuses a data connection from
// another host than the control connection's (vsftpd's
// pasv_promiscuous=NO, the default).
type fromSet struct {
	mu sync.Mutex
	n  map[netip.Addr]int
}

// add counts a stream from addr; the func it returns uncounts it (once).
func (s *fromSet) add(addr netip.Addr) func() {
	if !addr.IsValid() {
		return func() {}
	}
	s.mu.Lock()
	if s.n == nil {
		s.n = map[netip.Addr]int{}
	}
	s.n[addr]++
	s.mu.Unlock()
	return sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.n[addr]--; s.n[addr] <= 0 {
			delete(s.n, addr)
		}
	})
}

// has reports whether a stream from addr is open.
func (s *fromSet) has(addr netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[addr] > 0
}
