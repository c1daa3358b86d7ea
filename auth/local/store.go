package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
)

// ProviderName is the Store's auth.Provider name.
const ProviderName = "local"

// Config configures a Store. The keys named are those Validate uses.
type Config struct {
	// Path is the users file (file; required).
	Path string
	// Policy is the password policy (policy.*); Verify uses its max_age.
	Policy Policy
	// MaxConcurrent bounds the password checks that run at once
	// (max_concurrent_checks; 0 means runtime.NumCPU()).
	MaxConcurrent int
	// Params hash the dummy password Burn checks against; they should be
	// the parameters new passwords are hashed with (zero: DefaultParams).
	Params Params
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// DefaultConfig is the configuration for the users file at path.
func DefaultConfig(path string) Config {
	return Config{Path: path, Policy: DefaultPolicy()}
}

// Validate checks c, naming the key of each problem.
func (c Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("file: the users file is required"))
	}
	if c.MaxConcurrent < 0 {
		errs = append(errs, fmt.Errorf("max_concurrent_checks: %d is negative", c.MaxConcurrent))
	}
	if c.Params != (Params{}) {
		if err := c.Params.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("params: %w", err))
		}
	}
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("policy.%w", err))
	}
	return errors.Join(errs...)
}

func (c Config) maxConcurrent() int {
	if c.MaxConcurrent > 0 {
		return c.MaxConcurrent
	}
	return runtime.NumCPU()
}

func (c Config) params() Params {
	if c.Params == (Params{}) {
		return DefaultParams
	}
	return c.Params
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// entry is a loaded user: the hash parsed, pins decoded, the backend
// password read.
type entry struct {
	hash     *Hash // nil: a profile only
	disabled bool
	groups   []string
	changed  time.Time
	profile  auth.Profile
}

type snapshot struct {
	users map[string]*entry
	sum   [32]byte
}

// Store is the local users provider: an auth.Provider ("local") and an
// auth.Profiles over the users file. It is safe for concurrent use; a
// reload swaps the users atomically.
type Store struct {
	cfg   Config
	log   zerolog.Logger
	sem   chan struct{}
	dummy Hash

	inSlot func() // tests: runs inside a slot, before the check

	reload sync.Mutex // one load at a time
	snap   atomic.Pointer[snapshot]
}

var (
	_ auth.Provider = (*Store)(nil)
	_ auth.Profiles = (*Store)(nil)
)

// Open validates cfg and loads the users file.
func Open(cfg Config, log zerolog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, log: log, sem: make(chan struct{}, cfg.maxConcurrent())}
	// The dummy password is random and thrown away: no login can match it.
	pw := make([]byte, 32)
	_, _ = rand.Read(pw)
	d, err := HashPassword(hex.EncodeToString(pw), cfg.params())
	if err != nil {
		return nil, err
	}
	if s.dummy, err = ParseHash(d); err != nil {
		return nil, err
	}
	snap, err := load(cfg.Path)
	if err != nil {
		return nil, err
	}
	s.snap.Store(snap)
	s.warnUnknownChange(snap)
	return s, nil
}

// Name is "local".
func (s *Store) Name() string { return ProviderName }

// Policy is the Store's password policy (the gateway's 230 warning uses
// its Warn).
func (s *Store) Policy() Policy { return s.cfg.Policy }

// Users is the number of entries loaded (profiles included).
func (s *Store) Users() int { return len(s.snap.Load().users) }

// Verify checks user's password. A user the file does not hold, or holds
// as a profile only, is auth.ErrUnknownUser (the next provider decides),
// except a disabled profile: that is auth.ErrDisabled, so that disabling
// an LDAP or token user's profile stops its logins while "local" comes
// first in the chain. Otherwise the password is hashed even for a
// disabled user, so that every known user costs the same; then a disabled
// user is auth.ErrDisabled, a wrong password auth.ErrDenied, a right but
// expired one auth.ErrExpired. A check that cannot get a slot before ctx
// ends is auth.ErrUnavailable.
func (s *Store) Verify(ctx context.Context, user, secret string) (auth.Identity, error) {
	e := s.snap.Load().users[user]
	if e == nil || (e.hash == nil && !e.disabled) {
		return auth.Identity{}, fmt.Errorf("local: user %q: %w", user, auth.ErrUnknownUser)
	}
	h := s.dummy
	if e.hash != nil {
		h = *e.hash
	}
	ok, err := s.match(ctx, h, secret)
	if err != nil {
		return auth.Identity{}, fmt.Errorf("local: user %q: %w", user, err)
	}
	if e.disabled {
		return auth.Identity{}, fmt.Errorf("local: user %q: %w", user, auth.ErrDisabled)
	}
	if !ok {
		return auth.Identity{}, fmt.Errorf("local: user %q: wrong password: %w", user, auth.ErrDenied)
	}
	exp := s.cfg.Policy.Expires(e.changed)
	if !exp.IsZero() && !s.cfg.now().Before(exp) {
		return auth.Identity{}, fmt.Errorf("local: user %q: the password expired at %s: %w", user, exp.Format(time.RFC3339), auth.ErrExpired)
	}
	return auth.Identity{
		User:            user,
		Groups:          append([]string(nil), e.groups...),
		Provider:        ProviderName,
		Factor:          auth.FactorPassword,
		PasswordExpires: exp,
	}, nil
}

// Burn spends the work of one password check (against a dummy hash with
// Config.Params) and always fails, so that a login for a user no provider
// knows costs what a known user's does. Its error is auth.ErrUnavailable
// when no slot was free before ctx ended, else auth.ErrUnknownUser.
func (s *Store) Burn(ctx context.Context) error {
	if _, err := s.match(ctx, s.dummy, "ftpsgate-unknown-user"); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	return auth.ErrUnknownUser
}

// match hashes secret with h's parameters in one of the limited slots.
func (s *Store) match(ctx context.Context, h Hash, secret string) (bool, error) {
	if len(secret) > maxPasswordLen {
		// Not hashed whole, and never matches: no stored password is longer.
		secret = secret[:maxPasswordLen+1]
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("all %d password-check slots busy until the login's deadline: %w (%w)", cap(s.sem), auth.ErrUnavailable, ctx.Err())
	}
	defer func() { <-s.sem }()
	if s.inSlot != nil {
		s.inSlot()
	}
	return h.Match(secret), nil
}

// Profile returns user's profile: factors, TOTP secret, pins and backend
// account. It holds for profile-only entries too. A disabled user has
// none (auth.Profile has no disabled flag): no pins, no TOTP secret, so a
// certificate-only login fails; use Disabled to tell the two apart.
func (s *Store) Profile(user string) (auth.Profile, bool) {
	e := s.snap.Load().users[user]
	if e == nil || e.disabled {
		return auth.Profile{}, false
	}
	p := e.profile
	p.Factors = append([]string(nil), p.Factors...)
	p.Pins = append([][32]byte(nil), p.Pins...)
	return p, true
}

// Disabled says whether the file holds user and marks it disabled.
func (s *Store) Disabled(user string) bool {
	e := s.snap.Load().users[user]
	return e != nil && e.disabled
}

// Reload loads the users file again. When it fails to load, the users
// loaded before stay, the error is logged and returned.
func (s *Store) Reload() error {
	s.reload.Lock()
	defer s.reload.Unlock()
	snap, err := load(s.cfg.Path)
	if err != nil {
		s.log.Error().Err(err).Str("file", s.cfg.Path).Int("users", s.Users()).Msg("users file not reloaded: the users loaded before stay")
		return err
	}
	s.snap.Store(snap)
	s.warnUnknownChange(snap)
	s.log.Info().Str("file", s.cfg.Path).Int("users", len(snap.users)).Msg("users file loaded")
	return nil
}

// Watch reloads the users file every interval when its content changed,
// until ctx is done. Failures are logged by Reload.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	// failed is the content (or read error) that last failed to load, so
	// that a broken file is reported once, not at every tick.
	var failed string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var key string
		data, _, err := readFile(s.cfg.Path)
		if err != nil {
			key = "error: " + err.Error()
		} else {
			sum := sha256.Sum256(data)
			if sum == s.snap.Load().sum {
				failed = ""
				continue
			}
			key = hex.EncodeToString(sum[:])
		}
		if key == failed {
			continue
		}
		failed = ""
		if s.Reload() != nil {
			failed = key
		}
	}
}

func (s *Store) warnUnknownChange(snap *snapshot) {
	if s.cfg.Policy.MaxAge <= 0 {
		return
	}
	for name, e := range snap.users {
		if e.hash != nil && e.changed.IsZero() {
			s.log.Warn().Str("user", name).Str("key", "password_changed").Msg("local user has no password_changed while policy.max_age is set: the password counts as expired")
		}
	}
}

// load reads, parses and resolves the users file.
func load(path string) (*snapshot, error) {
	data, f, err := readParsed(path)
	if err != nil {
		return nil, err
	}
	snap := &snapshot{users: make(map[string]*entry, len(f.Users)), sum: sha256.Sum256(data)}
	var errs []error
	for name, u := range f.Users {
		e, err := resolve(name, u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		snap.users[name] = e
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return snap, nil
}

// resolve turns a parsed user into an entry, reading the backend password.
func resolve(name string, u *User) (*entry, error) {
	e := &entry{disabled: u.Disabled, groups: u.Groups, changed: u.PasswordChanged}
	if u.Password != "" {
		h, err := ParseHash(u.Password)
		if err != nil {
			return nil, fmt.Errorf("users.%s.%s: %w", name, keyPassword, err)
		}
		e.hash = &h
	}
	e.profile = auth.Profile{Factors: u.Factors, TOTPSecret: u.TOTPSecret, BackendUser: u.BackendUser}
	for _, p := range u.Pins {
		pin, err := ParsePin(p)
		if err != nil {
			return nil, fmt.Errorf("users.%s.%s: %w", name, keyPins, err)
		}
		e.profile.Pins = append(e.profile.Pins, pin)
	}
	switch {
	case u.BackendPasswordFile != "":
		b, err := readSmall(u.BackendPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("users.%s.%s: %w", name, keyBackendPasswordFile, err)
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pw == "" || bytes.ContainsAny([]byte(pw), "\r\n\x00") {
			return nil, fmt.Errorf("users.%s.%s: %s must hold one non-empty line", name, keyBackendPasswordFile, u.BackendPasswordFile)
		}
		e.profile.BackendPassword = pw
	case u.BackendPasswordEnv != "":
		pw, ok := os.LookupEnv(u.BackendPasswordEnv)
		if !ok || pw == "" {
			return nil, fmt.Errorf("users.%s.%s: the environment variable %s is not set", name, keyBackendPasswordEnv, u.BackendPasswordEnv)
		}
		if strings.ContainsAny(pw, "\r\n\x00") {
			return nil, fmt.Errorf("users.%s.%s: the environment variable %s holds a line break or NUL", name, keyBackendPasswordEnv, u.BackendPasswordEnv)
		}
		e.profile.BackendPassword = pw
	}
	return e, nil
}

// readSmall reads a backend password file, at most 4 KiB.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return nil, err
	}
	if len(b) > 4096 {
		return nil, fmt.Errorf("%s is larger than 4 KiB", path)
	}
	return b, nil
}
