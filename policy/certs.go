package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// CertStore holds the served certificate. Swapping it is atomic, so a
// reload never disturbs handshakes in flight or running sessions.
type CertStore struct {
	cur atomic.Pointer[tls.Certificate]
}

// NewCertStore returns a store serving cert.
func NewCertStore(cert *tls.Certificate) *CertStore {
	s := &CertStore{}
	s.cur.Store(cert)
	return s
}

// Set replaces the served certificate.
func (s *CertStore) Set(cert *tls.Certificate) { s.cur.Store(cert) }

// Get returns the served certificate.
func (s *CertStore) Get() *tls.Certificate { return s.cur.Load() }

// CertGetter gives the certificate to serve: what tls.Config.GetCertificate
// calls.
type CertGetter interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// GetCertificate returns the served certificate (a CertGetter).
func (s *CertStore) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.Get(), nil
}

// NotAfter returns the expiry of the served certificate.
func (s *CertStore) NotAfter() time.Time {
	if c := s.Get(); c != nil && c.Leaf != nil {
		return c.Leaf.NotAfter
	}
	return time.Time{}
}

// DaysLeft returns the whole days until the served certificate expires
// (negative once expired), for monitoring.
func (s *CertStore) DaysLeft(now time.Time) int {
	return int(s.NotAfter().Sub(now).Hours() / 24)
}

// CertEvent is what a Reloader reports: a reload, a failed reload, or an
// expiry warning. Err is set for failures; Expiry events carry DaysLeft.
type CertEvent struct {
	Kind     string // "reloaded", "reload_failed", "expiring", "expired"
	Err      error
	NotAfter time.Time
	DaysLeft int
}

// Reloader keeps a CertStore in step with its files: it reloads when their
// content changes (a Kubernetes secret mount swaps a symlink, which changes
// the content the path resolves to) or when asked (SIGHUP). A file that does
// not load keeps the old certificate. It also reports expiry: daily from 30
// days before, and as an error once expired.
type Reloader struct {
	Store             *CertStore
	CertFile, KeyFile string
	// Interval between file checks; zero: 2s.
	Interval time.Duration
	// OnEvent receives every event; it must not block.
	OnEvent func(CertEvent)
	// Now is the clock; nil: time.Now.
	Now func() time.Time

	mu         sync.Mutex
	digest     [32]byte
	lastExpiry time.Time // when the last expiry event fired
}

const expiryWarningDays = 30

func (r *Reloader) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reloader) event(e CertEvent) {
	if r.OnEvent != nil {
		r.OnEvent(e)
	}
}

func (r *Reloader) fileDigest() ([32]byte, error) {
	c, err := os.ReadFile(r.CertFile)
	if err != nil {
		return [32]byte{}, err
	}
	k, err := os.ReadFile(r.KeyFile)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(bytes.Join([][]byte{c, k}, []byte{0})), nil
}

// Init records the current files' digest, so that the first check does not
// reload what was just loaded, and checks expiry.
func (r *Reloader) Init() {
	r.mu.Lock()
	if d, err := r.fileDigest(); err == nil {
		r.digest = d
	}
	r.mu.Unlock()
	r.CheckExpiry()
}

// Reload loads the files now if they changed (or always, with force).
// It returns whether the served certificate changed.
func (r *Reloader) Reload(force bool) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.fileDigest()
	if err != nil {
		r.event(CertEvent{Kind: "reload_failed", Err: err})
		return false, err
	}
	if d == r.digest && !force {
		return false, nil
	}
	pair, err := loadKeyPair(r.CertFile, r.KeyFile)
	if err != nil {
		// Remember the bad content so that it is reported once, not every tick.
		r.digest = d
		err = fmt.Errorf("keeping the current certificate: %w", err)
		r.event(CertEvent{Kind: "reload_failed", Err: err})
		return false, err
	}
	r.digest = d
	r.Store.Set(pair)
	r.lastExpiry = time.Time{}
	r.event(CertEvent{Kind: "reloaded", NotAfter: pair.Leaf.NotAfter, DaysLeft: r.Store.DaysLeft(r.now())})
	r.checkExpiryLocked()
	return true, nil
}

// CheckExpiry reports an expiring or expired certificate, at most once a day.
func (r *Reloader) CheckExpiry() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkExpiryLocked()
}

func (r *Reloader) checkExpiryLocked() {
	now := r.now()
	notAfter := r.Store.NotAfter()
	if notAfter.IsZero() || notAfter.Sub(now) > expiryWarningDays*24*time.Hour {
		return
	}
	if !r.lastExpiry.IsZero() && now.Sub(r.lastExpiry) < 24*time.Hour {
		return
	}
	r.lastExpiry = now
	kind := "expiring"
	if !now.Before(notAfter) {
		kind = "expired"
	}
	r.event(CertEvent{Kind: kind, NotAfter: notAfter, DaysLeft: r.Store.DaysLeft(now)})
}

// Run checks the files every Interval and expiry every tick (reported at
// most daily) until ctx is done. reload forces a reload (SIGHUP).
func (r *Reloader) Run(ctx context.Context, reload <-chan struct{}) {
	interval := r.Interval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			_, _ = r.Reload(true)
		case <-t.C:
			_, _ = r.Reload(false)
			r.CheckExpiry()
		}
	}
}
