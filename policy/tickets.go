package policy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"sync"
	"time"
)

// TicketKeys rotates the session ticket keys of a set of server configs
// together, so that a ticket from one listener's config also opens on the
// others until it ages out. The newest key encrypts; the previous one still
// decrypts, so a ticket lives between one and two rotation intervals.
type TicketKeys struct {
	mu      sync.Mutex
	configs []*tls.Config
	keys    [][32]byte
}

// Register adds cfg and gives it the current keys.
func (k *TicketKeys) Register(cfg *tls.Config) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) == 0 {
		k.keys = [][32]byte{newTicketKey()}
	}
	k.configs = append(k.configs, cfg)
	cfg.SetSessionTicketKeys(k.keys)
}

// Rotate makes a new encryption key and drops all but the previous one.
func (k *TicketKeys) Rotate() {
	k.mu.Lock()
	defer k.mu.Unlock()
	next := [][32]byte{newTicketKey()}
	if len(k.keys) > 0 {
		next = append(next, k.keys[0])
	}
	k.keys = next
	for _, c := range k.configs {
		c.SetSessionTicketKeys(k.keys)
	}
}

// Run rotates every interval until ctx is done.
func (k *TicketKeys) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.Rotate()
		}
	}
}

func newTicketKey() [32]byte {
	var key [32]byte
	_, _ = rand.Read(key[:]) // crypto/rand.Read never fails (Go 1.24+)
	return key
}
