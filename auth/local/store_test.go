package local

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
)

// lockedBuf is a log sink safe for the Watch goroutine.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func writeUsers(t *testing.T, path string, f *File) {
	t.Helper()
	out, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".new", out, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

func openStore(t *testing.T, f *File, mod func(*Config)) (*Store, string, *lockedBuf) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.yaml")
	writeUsers(t, path, f)
	cfg := DefaultConfig(path)
	cfg.Params = testParams
	if mod != nil {
		mod(&cfg)
	}
	logs := &lockedBuf{}
	s, err := Open(cfg, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	return s, path, logs
}

func TestStoreVerify(t *testing.T) {
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	t.Setenv("FTPSGATE_TEST_BACKEND_PW", "backend-secret")
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pin := [32]byte{9, 9, 9}
	f := &File{Users: map[string]*User{
		"alice":   {Password: mustHash(t, "alice-pw"), Groups: []string{"partners"}, PasswordChanged: now.Add(-10 * 24 * time.Hour), BackendUser: "legacy", BackendPasswordEnv: "FTPSGATE_TEST_BACKEND_PW"},
		"old":     {Password: mustHash(t, "old-pw"), PasswordChanged: now.Add(-100 * 24 * time.Hour)},
		"nodate":  {Password: mustHash(t, "nodate-pw")},
		"off":     {Password: mustHash(t, "off-pw"), Disabled: true, PasswordChanged: now},
		"ldapbob": {Factors: []string{"password", "totp"}, TOTPSecret: testTOTPSecret, Pins: []string{FormatPin(pin)}, BackendPasswordFile: pwFile},
	}}
	s, _, logs := openStore(t, f, func(c *Config) {
		c.Policy.MaxAge = 90 * 24 * time.Hour
		c.Now = func() time.Time { return now }
	})
	if s.Name() != "local" {
		t.Fatal(s.Name())
	}
	ctx := context.Background()
	id, err := s.Verify(ctx, "alice", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	if id.User != "alice" || id.Provider != "local" || id.Factor != auth.FactorPassword || len(id.Groups) != 1 ||
		!id.PasswordExpires.Equal(now.Add(80*24*time.Hour)) {
		t.Fatalf("identity %+v", id)
	}
	if !s.Policy().Warn(id.PasswordExpires, now) == false {
		t.Fatal("warned 80 days early")
	}
	for _, tc := range []struct {
		user, pw string
		want     error
	}{
		{"alice", "bad-guess", auth.ErrDenied},
		{"alice", "", auth.ErrDenied},
		{"alice", strings.Repeat("x", 5000), auth.ErrDenied},
		{"Alice", "alice-pw", auth.ErrUnknownUser},
		{"nobody", "x", auth.ErrUnknownUser},
		{"ldapbob", "x", auth.ErrUnknownUser},
		{"old", "old-pw", auth.ErrExpired},
		{"old", "bad-guess", auth.ErrDenied},
		{"nodate", "nodate-pw", auth.ErrExpired},
		{"off", "off-pw", auth.ErrDisabled},
	} {
		_, err := s.Verify(ctx, tc.user, tc.pw)
		if !errors.Is(err, tc.want) {
			t.Errorf("Verify(%s) = %v, want %v", tc.user, err, tc.want)
		}
		if err != nil && tc.pw != "" && strings.Contains(err.Error(), tc.pw) {
			t.Errorf("the error quotes the password: %v", err)
		}
	}
	if !strings.Contains(logs.String(), `"user":"nodate"`) {
		t.Errorf("no warning about nodate's missing password_changed: %s", logs)
	}
	p, ok := s.Profile("alice")
	if !ok || p.BackendUser != "legacy" || p.BackendPassword != "backend-secret" {
		t.Fatalf("alice's profile %+v", p)
	}
	p, ok = s.Profile("ldapbob")
	if !ok || p.BackendPassword != "file-secret" || p.TOTPSecret != testTOTPSecret || len(p.Pins) != 1 || p.Pins[0] != pin || len(p.Factors) != 2 {
		t.Fatalf("ldapbob's profile %+v", p)
	}
	if _, ok := s.Profile("nobody"); ok {
		t.Fatal("a profile for nobody")
	}
	if err := s.Burn(ctx); !errors.Is(err, auth.ErrUnknownUser) {
		t.Fatal(err)
	}
}

func TestStoreLoadErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		u    *User
		want string
	}{
		{"env", &User{BackendPasswordEnv: "FTPSGATE_TEST_UNSET_VARIABLE"}, "users.x.backend_password_env: the environment variable FTPSGATE_TEST_UNSET_VARIABLE is not set"},
		{"file", &User{BackendPasswordFile: filepath.Join(dir, "none")}, "users.x.backend_password_file"},
	} {
		path := filepath.Join(dir, tc.name+".yaml")
		writeUsers(t, path, &File{Users: map[string]*User{"x": tc.u}})
		cfg := DefaultConfig(path)
		cfg.Params = testParams
		_, err := Open(cfg, zerolog.Nop())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Open = %v, want %q", tc.name, err, tc.want)
		}
	}
	bad := DefaultConfig("")
	bad.MaxConcurrent = -1
	bad.Policy.MinClasses = 9
	err := bad.Validate()
	for _, k := range []string{"file:", "max_concurrent_checks:", "policy.min_classes:"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("Validate = %v, want %s", err, k)
		}
	}
}

func TestStorePermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	writeUsers(t, path, &File{Users: map[string]*User{}})
	for _, mode := range []os.FileMode{0o660, 0o602} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig(path)
		cfg.Params = testParams
		_, err := Open(cfg, zerolog.Nop())
		if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "could add itself a user") {
			t.Errorf("mode %o: Open = %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(path)
	cfg.Params = testParams
	if _, err := Open(cfg, zerolog.Nop()); err != nil {
		t.Errorf("mode 0644: %v", err)
	}
}

func TestStoreReloadKeepsUsersOnBrokenFile(t *testing.T) {
	s, path, logs := openStore(t, &File{Users: map[string]*User{"alice": {Password: mustHash(t, "alice-pw")}}}, nil)
	if err := os.WriteFile(path, []byte("users:\n  alice:\n    pasword: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.Reload()
	if err == nil || !strings.Contains(err.Error(), `unknown key "pasword"`) {
		t.Fatalf("Reload = %v", err)
	}
	if _, err := s.Verify(context.Background(), "alice", "alice-pw"); err != nil {
		t.Fatalf("alice lost after a failed reload: %v", err)
	}
	if !strings.Contains(logs.String(), "not reloaded") {
		t.Errorf("no log line: %s", logs)
	}
	// A good file replaces the users.
	writeUsers(t, path, &File{Users: map[string]*User{"bob": {Password: mustHash(t, "bob-pw")}}})
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(context.Background(), "alice", "alice-pw"); !errors.Is(err, auth.ErrUnknownUser) {
		t.Fatalf("alice after reload: %v", err)
	}
	if _, err := s.Verify(context.Background(), "bob", "bob-pw"); err != nil {
		t.Fatal(err)
	}
}

func TestStoreWatch(t *testing.T) {
	s, path, logs := openStore(t, &File{Users: map[string]*User{"alice": {Password: mustHash(t, "alice-pw")}}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Watch(ctx, 5*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	err := Edit(path, func(f *File) error {
		f.Users["bob"] = &User{Password: mustHash(t, "bob-pw")}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.Verify(context.Background(), "bob", "bob-pw"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Watch did not pick up bob; logs: %s", logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// An unchanged file is not loaded again.
	n := strings.Count(logs.String(), "users file loaded")
	time.Sleep(50 * time.Millisecond)
	if m := strings.Count(logs.String(), "users file loaded"); m != n {
		t.Fatalf("reloaded an unchanged file %d times", m-n)
	}
}

// The limiter: no more checks run at once than MaxConcurrent, and a check
// that waits past its context's end is ErrUnavailable.
func TestStoreLimiter(t *testing.T) {
	s, _, _ := openStore(t, &File{Users: map[string]*User{"alice": {Password: mustHash(t, "alice-pw")}}}, func(c *Config) { c.MaxConcurrent = 2 })
	// Count the checks running inside their slots.
	var running, peak atomic.Int32
	s.inSlot = func() {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Verify(context.Background(), "alice", "alice-pw")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s.inSlot = nil
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak %d concurrent checks, limit 2", p)
	}
	// Fill both slots: a check whose context ends while it waits fails.
	s.sem <- struct{}{}
	s.sem <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := s.Verify(ctx, "alice", "alice-pw")
	if !errors.Is(err, auth.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify with full slots = %v", err)
	}
	if err := s.Burn(ctx); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Burn with full slots = %v", err)
	}
	<-s.sem
	<-s.sem
	if _, err := s.Verify(context.Background(), "alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
}

func TestStoreDefaultConcurrency(t *testing.T) {
	s, _, _ := openStore(t, &File{}, nil)
	if cap(s.sem) != runtime.NumCPU() {
		t.Fatal(cap(s.sem))
	}
}

// A broken file is reported once, not at every tick, and the users stay;
// fixing it loads it.
func TestStoreWatchBrokenFileOnce(t *testing.T) {
	s, path, logs := openStore(t, &File{Users: map[string]*User{"alice": {Password: mustHash(t, "alice-pw")}}}, nil)
	if err := os.WriteFile(path, []byte("users: [broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Watch(ctx, 2*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "not reloaded") {
		if time.Now().After(deadline) {
			t.Fatal("no log line for the broken file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(60 * time.Millisecond) // many ticks
	if n := strings.Count(logs.String(), "not reloaded"); n != 1 {
		t.Fatalf("the broken file was reported %d times", n)
	}
	if _, err := s.Verify(context.Background(), "alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	writeUsers(t, path, &File{Users: map[string]*User{"bob": {Password: mustHash(t, "bob-pw")}}})
	for s.Users() != 1 || s.Disabled("bob") || func() bool { _, ok := s.Profile("bob"); return !ok }() {
		if time.Now().After(deadline) {
			t.Fatal("the fixed file was not loaded")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStoreDisabledHasNoProfile(t *testing.T) {
	s, _, _ := openStore(t, &File{Users: map[string]*User{
		"svc": {Password: mustHash(t, "pw"), Disabled: true, Factors: []string{"client_cert"}, Pins: []string{FormatPin([32]byte{1})}},
	}}, nil)
	if _, ok := s.Profile("svc"); ok || !s.Disabled("svc") || s.Disabled("nobody") {
		t.Fatal("a disabled user has a profile")
	}
}
