package nat

import (
	"errors"
	"net/netip"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Config is the passive-mode configuration.
type Config struct {
	// PublicHost is the IPv4 address advertised in 227 replies. If zero, the
	// local address of the client's control connection is advertised.
	PublicHost netip.Addr
	// PublicName is the DNS name to advertise instead of PublicHost: its
	// resolved IPv4 address goes into 227 replies. Nil: none.
	PublicName *PublicName
	// Ports is the only range client data connections may use.
	Ports PortRange
}

// Validate checks the configuration. Each problem is a *confkey.Error whose
// key is relative to the passive section ("ports", "public_host").
func (c Config) Validate() error {
	var errs []error
	if err := c.Ports.Validate(); err != nil {
		errs = append(errs, confkey.New("ports", err))
	}
	if c.PublicHost.IsValid() && !c.PublicHost.Unmap().Is4() {
		errs = append(errs, confkey.Errorf("public_host", "%s is not an IPv4 address (227 replies carry IPv4 only; IPv6 clients use EPSV)", c.PublicHost))
	}
	if n := c.PublicName; n != nil {
		switch {
		case c.PublicHost.IsValid():
			errs = append(errs, confkey.Errorf("public_host", "both an address (%s) and a name (%s)", c.PublicHost, n.Name))
		case !n.Addr().IsValid():
			errs = append(errs, confkey.Errorf("public_host", "%s has not resolved to an IPv4 address", n.Name))
		}
	}
	return errors.Join(errs...)
}

// Advertise returns the address to put in a 227 reply for a control
// connection whose local address is local.
func (c Config) Advertise(local netip.Addr) netip.Addr {
	if c.PublicHost.IsValid() {
		return c.PublicHost.Unmap()
	}
	if c.PublicName != nil {
		if a := c.PublicName.Addr(); a.IsValid() {
			return a
		}
	}
	return local.Unmap()
}
