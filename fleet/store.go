package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/events"
)

// probeEvery is how often a down store is probed.
const probeEvery = 500 * time.Millisecond

// Store is the connection to Redis shared by Bans, Admission and Replay:
// the per-call deadline, the down/up state, the leases to renew.
type Store struct {
	cfg     Config
	rdb     redis.UniversalClient
	log     zerolog.Logger
	sink    events.Sink
	replica string

	down atomic.Bool

	mu     sync.Mutex
	onUp   []func() // run (in order, on a goroutine of their own) when the store comes back
	stops  []func() // run at Close, after the context is cancelled: unblock readers
	leases map[leaseRef]struct{}
	closed bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	seq    atomic.Uint64
}

// leaseRef is one held lease: a member of a sorted set.
type leaseRef struct{ key, id string }

// New connects to Redis as cfg says (it must have passed Validate and be
// Enabled) and starts the heartbeat and the probe. Redis that cannot be
// reached is no error: the store starts down, logs it, and comes up when
// Redis answers. sink (may be nil) receives the store's events.
func New(cfg Config, log zerolog.Logger, sink events.Sink) (*Store, error) {
	if !cfg.Enabled() {
		return nil, errors.New("fleet: redis.addresses is not set")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("fleet: invalid configuration:\n%w", err)
	}
	tlsCfg, err := cfg.TLS.config()
	if err != nil {
		return nil, fmt.Errorf("fleet: redis.tls: %w", err)
	}
	if sink == nil {
		sink = events.Nop{}
	}
	t := cfg.timeout()
	s := &Store{
		cfg: cfg, sink: sink, replica: cfg.replica(),
		leases: map[leaseRef]struct{}{},
	}
	s.log = log.With().Str("component", "fleet").Str("replica", s.replica).Logger()
	s.rdb = redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:      cfg.Addresses,
		MasterName: cfg.MasterName,
		Username:   cfg.Username,
		Password:   cfg.Password,
		DB:         cfg.DB,
		TLSConfig:  tlsCfg,
		ClientName: "ftpsgate-" + s.replica,
		// Every call is bounded by Timeout: no retry, no wait longer than
		// it for a connection from the pool.
		DialTimeout:           t,
		ReadTimeout:           t,
		WriteTimeout:          t,
		PoolTimeout:           t,
		MaxRetries:            -1,
		ContextTimeoutEnabled: true,
	})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.ping(); err != nil {
		s.setDown(err)
	} else {
		s.log.Info().Strs("addresses", cfg.Addresses).Str("on_store_error", cfg.OnStoreError.String()).Msg("fleet: shared store connected")
	}
	s.wg.Add(2)
	go s.heartbeat()
	go s.probe()
	return s, nil
}

// Client is the Redis client (for tests and tools).
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Replica is this gateway's name in the fleet.
func (s *Store) Replica() string { return s.replica }

// Mode is what the store does while down.
func (s *Store) Mode() Mode { return s.cfg.OnStoreError }

// Up reports whether the store is reachable (as far as the last call and
// the probe know).
func (s *Store) Up() bool { return !s.down.Load() }

// Degraded reports whether the store is down and the replica serves with
// its local state (mode local): the fallback gauge.
func (s *Store) Degraded() bool { return s.down.Load() }

// Leases is the number of session leases this replica holds.
func (s *Store) Leases() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.leases)
}

// key is a key of kind for tag: "PREFIX" + kind + ":{" + tag + "}". The
// braces make tag the Cluster hash tag, so that the keys one script
// touches (one address's) live in one slot.
func (s *Store) key(kind, tag string) string {
	return s.cfg.prefix() + kind + ":{" + tag + "}"
}

// channel is the pub/sub channel of ban changes.
func (s *Store) channel() string { return s.cfg.prefix() + "bans" }

// newID returns an id unique in the fleet: replica, start time, sequence.
func (s *Store) newID() string {
	return fmt.Sprintf("%s:%d:%d", s.replica, startNanos, s.seq.Add(1))
}

var startNanos = time.Now().UnixNano()

// do runs f with the per-call deadline, emits its StoreCall and marks the
// store down on an error. redis.Nil is no error.
func (s *Store) do(op string, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.timeout())
	defer cancel()
	start := time.Now()
	err := f(ctx)
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	s.sink.Emit(events.StoreCall{Op: op, Duration: time.Since(start), Err: err})
	if err != nil {
		if s.ctx.Err() != nil {
			return err // closing
		}
		s.setDown(err)
		return fmt.Errorf("fleet: %s: %w", op, err)
	}
	return nil
}

// fallback records a decision taken without the store and returns the
// mode that decides it.
func (s *Store) fallback(op string) Mode {
	m := s.cfg.OnStoreError
	s.sink.Emit(events.StoreFallback{Op: op, Mode: m.String()})
	return m
}

func (s *Store) ping() error {
	return s.do("probe", func(ctx context.Context) error { return s.rdb.Ping(ctx).Err() })
}

// setDown marks the store down; the change is logged once.
func (s *Store) setDown(err error) {
	if !s.down.CompareAndSwap(false, true) {
		return
	}
	ev := s.log.Error().Err(err).Str("on_store_error", s.cfg.OnStoreError.String())
	if s.cfg.OnStoreError == ModeLocal {
		ev.Msg("fleet: shared store down: serving with this replica's own bans, limits and TOTP state until it is back")
	} else {
		ev.Msg("fleet: shared store down: refusing new sessions with 421 until it is back")
	}
	s.sink.Emit(events.StoreState{Up: false, Mode: s.cfg.OnStoreError.String(), Err: err})
}

// setUp marks the store up; the change is logged once and the OnUp
// functions run.
func (s *Store) setUp() {
	if !s.down.CompareAndSwap(true, false) {
		return
	}
	s.log.Warn().Msg("fleet: shared store back: sharing again")
	s.sink.Emit(events.StoreState{Up: true, Mode: s.cfg.OnStoreError.String()})
	s.mu.Lock()
	fs := append([]func(){}, s.onUp...)
	s.mu.Unlock()
	s.renewAll() // leases lost with the store's data come back
	for _, f := range fs {
		f()
	}
}

// OnUp adds f to what runs when the store comes back after being down.
func (s *Store) OnUp(f func()) {
	s.mu.Lock()
	s.onUp = append(s.onUp, f)
	s.mu.Unlock()
}

// probe pings a down store until it answers.
func (s *Store) probe() {
	defer s.wg.Done()
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if !s.down.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.timeout())
		err := s.rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			s.setUp()
		}
	}
}

// Close stops the heartbeat and the probe, gives back the leases still
// held (a clean stop frees its places at once) and closes the connections.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	held := make([]leaseRef, 0, len(s.leases))
	for r := range s.leases {
		held = append(held, r)
	}
	s.mu.Unlock()
	if len(held) > 0 && s.Up() {
		_ = s.do("release", func(ctx context.Context) error {
			_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, r := range held {
					p.ZRem(ctx, r.key, r.id)
				}
				return nil
			})
			return err
		})
	}
	s.stop()
	return s.rdb.Close()
}

// stop cancels the store's context, unblocks its readers and waits for
// its goroutines.
func (s *Store) stop() {
	s.cancel()
	s.mu.Lock()
	stops := s.stops
	s.mu.Unlock()
	for _, f := range stops {
		f()
	}
	s.wg.Wait()
}

// ErrDown is a decision refused because the store is down (mode closed).
var ErrDown = errors.New("fleet: the shared store is unavailable (fleet.on_store_error: closed)")
