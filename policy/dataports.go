package policy

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrBackendDataPort refuses a data port that the backend named in its
// 227/229 reply.
var ErrBackendDataPort = errors.New("policy: backend data port refused")

// BackendDataPorts decides whether the gateway may connect to the data port
// a backend names in its PASV/EPSV reply. A hostile or compromised backend
// could otherwise have the gateway connect to any port of its host and
// relay the client's upload into it: the gateway's own admin API when they
// share a host, a mail or database port elsewhere. The zero value refuses
// only ports below 1024.
type BackendDataPorts struct {
	// Low and High, when set, are the only ports allowed (backend.data_ports:
	// the backend's own passive range). Zero: any port from 1024.
	Low, High uint16
	// Own are the gateway's own listening addresses (control listeners,
	// admin API). An unspecified address (0.0.0.0, ::) means every address
	// of the host.
	Own []netip.AddrPort
	// PassiveLow and PassiveHigh are the gateway's passive port range, on
	// its own addresses.
	PassiveLow, PassiveHigh uint16
	// PassiveLeased, if set, reports whether the gateway listens on a port
	// of its passive range right now; only those are refused. A backend on
	// the same host whose passive ports are ephemeral (no range of its
	// own) may well be given a port of the range the gateway is not using.
	// Nil: the whole range is refused.
	PassiveLeased func(port uint16) bool
}

// Check decides target, the backend's host with the port it named.
// sameHost says whether the backend runs on the gateway's host (the
// gateway's address of its control connection is the backend's own, or the
// backend is on loopback): then every port the gateway listens on is off
// limits, whatever address it is bound to. On another host only an own
// address that is the backend's exactly is.
func (p BackendDataPorts) Check(target netip.AddrPort, sameHost bool) error {
	port := target.Port()
	if port < 1024 {
		return fmt.Errorf("%w: port %d is below 1024", ErrBackendDataPort, port)
	}
	if p.Low != 0 && (port < p.Low || port > p.High) {
		return fmt.Errorf("%w: port %d is outside backend.data_ports %d-%d", ErrBackendDataPort, port, p.Low, p.High)
	}
	host := target.Addr().Unmap()
	for _, own := range p.Own {
		if own.Port() != port {
			continue
		}
		if sameHost || own.Addr().Unmap() == host {
			return fmt.Errorf("%w: port %d is one of the gateway's own listening ports (%s)", ErrBackendDataPort, port, own)
		}
	}
	if sameHost && p.PassiveLow != 0 && port >= p.PassiveLow && port <= p.PassiveHigh &&
		(p.PassiveLeased == nil || p.PassiveLeased(port)) {
		return fmt.Errorf("%w: port %d is in the gateway's own passive range %d-%d", ErrBackendDataPort, port, p.PassiveLow, p.PassiveHigh)
	}
	return nil
}
