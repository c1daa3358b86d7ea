package tunnel

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// liveTunnel is the agent's tunnels up (one per gateway): SetConfig
// checks their gateways again when the gateway checks change.
type liveTunnel struct {
	mu sync.Mutex // also orders SetConfig's swap against set
	ls map[*link]struct{}
}

// set adds l to the tunnels up, unless a reload since its handshake
// changed the gateway checks and its gateway no longer passes them: then l
// is closed and the error says why.
func (t *liveTunnel) set(a *Agent, l *link) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := verifyGateway(a.conf(), l.cs, l.host); err != nil {
		_ = l.sess.Close()
		return fmt.Errorf("the gateway checks were reloaded during the connection: %w", err)
	}
	if t.ls == nil {
		t.ls = map[*link]struct{}{}
	}
	t.ls[l] = struct{}{}
	return nil
}

// clear removes l (its tunnel went down).
func (t *liveTunnel) clear(l *link) {
	t.mu.Lock()
	delete(t.ls, l)
	t.mu.Unlock()
}

// Config is the configuration in force, with the allow list in force.
func (a *Agent) Config() AgentConfig {
	c := *a.conf()
	c.Allow = a.Allow()
	return c
}

// SetConfig puts a reloaded configuration in force (cfg validated by the
// caller). What it changes applies to what starts after it:
//   - Certificate, GatewayPins, GatewayCA and ServerName: the next
//     connection to a gateway (the tunnel up keeps the certificate it
//     showed);
//   - MaxStreams, DialTimeout and Source: the streams that arrive next
//     (those relaying go on; below a lowered MaxStreams, new streams are
//     refused busy until fewer relay);
//   - Allow: as SetAllow.
//
// Gateways, Group, Name, HandshakeTimeout, KeepAlive, BackoffMin,
// BackoffMax and ShutdownGrace keep their values: they change at a
// restart.
//
// When the gateway checks changed (pins, CA or server name) and the
// certificate of a tunnel up's gateway no longer passes them, that
// tunnel is cut at once with the streams it carries: a gateway pin revoked
// ends what that gateway relays, as a removed agent pin does on the
// gateway. The agent then reconnects under the new checks. SetConfig
// returns the reasons of such cuts; nil: the tunnels, if any, stay.
func (a *Agent) SetConfig(cfg AgentConfig) error {
	a.live.mu.Lock()
	old := a.conf()
	next := *old
	next.Certificate = cfg.Certificate
	next.GatewayPins = slices.Clone(cfg.GatewayPins)
	next.GatewayCA, next.ServerName = cfg.GatewayCA, cfg.ServerName
	next.MaxStreams, next.DialTimeout, next.Source = cfg.MaxStreams, cfg.DialTimeout, cfg.Source
	next.Allow = slices.Clone(cfg.Allow)
	a.cfg.Store(&next)
	ls := make([]*link, 0, len(a.live.ls))
	for l := range a.live.ls {
		ls = append(ls, l)
	}
	a.live.mu.Unlock()
	a.SetAllow(cfg.Allow)
	if !trustChanged(old, &next) {
		return nil
	}
	var errs []error
	for _, l := range ls {
		err := verifyGateway(&next, l.cs, l.host)
		if err == nil {
			continue
		}
		a.log.Error().Err(err).Str("gateway", l.gw).
			Msg("tunnel cut: the gateway's certificate no longer passes the reloaded gateway_pins / gateway_ca_file")
		_ = l.sess.Close()
		errs = append(errs, fmt.Errorf("tunnel to %s cut: %w", l.gw, err))
	}
	return errors.Join(errs...)
}

// trustChanged reports whether the gateway checks differ.
func trustChanged(a, b *AgentConfig) bool {
	return !slices.Equal(a.GatewayPins, b.GatewayPins) || a.ServerName != b.ServerName || !samePool(a.GatewayCA, b.GatewayCA)
}

func samePool(a, b *x509.CertPool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}
