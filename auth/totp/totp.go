package totp

import (
	"crypto/subtle"
	"fmt"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	totplib "github.com/pquerna/otp/totp"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/ftpsgate/ftpsgate/auth"
)

// The code format authenticator apps expect.
const (
	Period = 30 * time.Second // one time step
	Digits = 6
	Skew   = 1 // steps accepted either side of the current one
)

// SecretSize is the size of new secrets in bytes (RFC 4226 recommends
// 160 bits).
const SecretSize = 20

// Errors of Verify. Each is an auth.ErrDenied.
var (
	ErrMalformed = fmt.Errorf("totp: the code is not %d digits: %w", Digits, auth.ErrDenied)
	ErrWrongCode = fmt.Errorf("totp: wrong code: %w", auth.ErrDenied)
	ErrReplayed  = fmt.Errorf("totp: the code was already used: %w", auth.ErrDenied)
	ErrSecret    = fmt.Errorf("totp: the user's secret is not valid base32: %w", auth.ErrDenied)
)

// Key is a new TOTP enrolment.
type Key struct {
	Secret string // base32 without padding: the users file's totp_secret
	URI    string // otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...
}

// NewKey makes a random secret for account at issuer.
func NewKey(issuer, account string) (Key, error) {
	k, err := totplib.Generate(totplib.GenerateOpts{
		Issuer: issuer, AccountName: account, Period: uint(Period / time.Second),
		SecretSize: SecretSize, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return Key{}, fmt.Errorf("totp: %w", err)
	}
	return Key{Secret: k.Secret(), URI: k.URL()}, nil
}

// QR draws uri as a QR code for a terminal, two modules per character
// (dark on light when inverse is false).
func QR(uri string, inverse bool) (string, error) {
	q, err := qrcode.New(uri, qrcode.Medium)
	if err != nil {
		return "", fmt.Errorf("totp: QR code: %w", err)
	}
	return q.ToSmallString(inverse), nil
}

// Code is the code for secret at t (for tests and tools).
func Code(secret string, t time.Time) (string, error) {
	return hotp.GenerateCodeCustom(secret, step(t), opts)
}

// Split cuts a TOTP code from the end of an FTP password
// ("password123456"); ok is false when pass is not longer than a code or
// does not end in Digits digits.
func Split(pass string) (password, code string, ok bool) {
	if len(pass) <= Digits {
		return "", "", false
	}
	password, code = pass[:len(pass)-Digits], pass[len(pass)-Digits:]
	if !wellFormed(code) {
		return "", "", false
	}
	return password, code, true
}

var opts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

func step(t time.Time) uint64 {
	return uint64(t.Unix() / int64(Period/time.Second))
}

func wellFormed(code string) bool {
	if len(code) != Digits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// DefaultMaxEntries bounds a Verifier's memory of used codes.
const DefaultMaxEntries = 1 << 16

type usedKey struct {
	user string
	step uint64
}

// Verifier checks codes and refuses one already used by the same user in
// the same step. Its zero value is ready; it is safe for concurrent use.
type Verifier struct {
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// MaxEntries bounds the used codes remembered (0: DefaultMaxEntries).
	// Only accepted codes are remembered, and only while their step can
	// still be accepted; when it is full of such codes, Verify fails with
	// auth.ErrUnavailable rather than forget one.
	MaxEntries int

	// Replay, when set, remembers the used codes instead of the
	// Verifier's memory: a store shared by a fleet (fleet.Replay), so that
	// a code used on one gateway is refused on every other.
	Replay ReplayStore

	mu   sync.Mutex
	used map[usedKey]struct{}
}

// ReplayStore remembers used codes: Use records that user used the code of
// step and reports whether it was fresh (false: already used). ttl is how
// long the step can still be accepted. An error (the store is down and
// refuses to decide) makes Verify fail with auth.ErrUnavailable.
type ReplayStore interface {
	Use(user string, step uint64, ttl time.Duration) (fresh bool, err error)
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) max() int {
	if v.MaxEntries > 0 {
		return v.MaxEntries
	}
	return DefaultMaxEntries
}

// Verify checks code against secret for user at the Verifier's time: the
// current step or one either side, each code once. Its errors are
// ErrMalformed, ErrWrongCode, ErrReplayed, ErrSecret (each an
// auth.ErrDenied), or an auth.ErrUnavailable when the memory of used
// codes is full.
func (v *Verifier) Verify(user, secret, code string) error {
	if !wellFormed(code) {
		return ErrMalformed
	}
	now := step(v.now())
	var match uint64
	found := 0
	// Every candidate is computed and compared in constant time, so the
	// time taken does not say which step matched.
	for d := -Skew; d <= Skew; d++ {
		s := now + uint64(d)
		want, err := hotp.GenerateCodeCustom(secret, s, opts)
		if err != nil {
			return ErrSecret
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && found == 0 {
			match, found = s, 1
		}
	}
	if found == 0 {
		return ErrWrongCode
	}
	if v.Replay != nil {
		ttl := time.Unix(int64(match+Skew+1)*int64(Period/time.Second), 0).Sub(v.now())
		fresh, err := v.Replay.Use(user, match, max(ttl, time.Second))
		switch {
		case err != nil:
			return fmt.Errorf("totp: used codes: %w: %w", err, auth.ErrUnavailable)
		case !fresh:
			return ErrReplayed
		}
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.used == nil {
		v.used = map[usedKey]struct{}{}
	}
	k := usedKey{user, match}
	if _, dup := v.used[k]; dup {
		return ErrReplayed
	}
	if len(v.used) >= v.max() {
		v.prune(now)
		if len(v.used) >= v.max() {
			return fmt.Errorf("totp: %d codes used within %v: %w", len(v.used), time.Duration(2*Skew+1)*Period, auth.ErrUnavailable)
		}
	}
	v.used[k] = struct{}{}
	if len(v.used)%1024 == 0 {
		v.prune(now)
	}
	return nil
}

// prune forgets the steps that can no longer be accepted.
func (v *Verifier) prune(now uint64) {
	for k := range v.used {
		if k.step+Skew < now {
			delete(v.used, k)
		}
	}
}

// Len is the number of used codes remembered.
func (v *Verifier) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.used)
}

// Prune forgets the used codes whose steps can no longer be accepted;
// Verify does it too when the memory fills.
func (v *Verifier) Prune() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.prune(step(v.now()))
}
