package policy

import (
	"context"
	"crypto/tls"
	"time"
)

// CertSource is the gateway's default source of the served certificate:
// the configured files (watched and reloaded by a Reloader) or, without
// files, a generated self-signed certificate that never reloads.
type CertSource struct {
	store    *CertStore
	reloader *Reloader // nil with a generated certificate
	subs     []func(CertEvent)
}

// NewCertSource loads c's certificate files, or generates a self-signed
// certificate for hosts when there are none (generated is then true).
func NewCertSource(c TLSConfig, hosts []string) (src *CertSource, generated bool, err error) {
	cert, generated, err := c.LoadCertificate(hosts)
	if err != nil {
		return nil, false, err
	}
	src = &CertSource{store: NewCertStore(cert)}
	if !generated {
		src.reloader = &Reloader{Store: src.store, CertFile: c.CertFile, KeyFile: c.KeyFile, OnEvent: src.event}
	}
	return src, generated, nil
}

func (c *CertSource) event(e CertEvent) {
	for _, f := range c.subs {
		f(e)
	}
}

// Subscribe adds f to the functions called for every certificate event
// (reloaded, reload_failed, expiring, expired). Call it before Run.
func (c *CertSource) Subscribe(f func(CertEvent)) { c.subs = append(c.subs, f) }

// GetCertificate returns the served certificate (a CertGetter).
func (c *CertSource) GetCertificate(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.store.GetCertificate(hi)
}

// NotAfter returns when the served certificate expires.
func (c *CertSource) NotAfter() time.Time { return c.store.NotAfter() }

// Reload reads the certificate files again now (SIGHUP). A file that does
// not load keeps the current certificate and returns the error. Without
// files it does nothing.
func (c *CertSource) Reload() error {
	if c.reloader == nil {
		return nil
	}
	_, err := c.reloader.Reload(true)
	return err
}

// Run watches the files and the expiry until ctx is done (see Reloader).
// Without files it returns at once.
func (c *CertSource) Run(ctx context.Context) {
	if c.reloader == nil {
		return
	}
	c.reloader.Init()
	c.reloader.Run(ctx, nil)
}
