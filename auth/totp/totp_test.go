package totp

import (
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	totplib "github.com/pquerna/otp/totp"

	"github.com/ftpsgate/ftpsgate/auth"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// RFC 6238 Appendix B: the test vectors, with pquerna/otp in 8 digits for
// every algorithm, and the 6-digit codes (the last six digits) through
// the Verifier for SHA-1.
func TestRFC6238Vectors(t *testing.T) {
	seeds := map[otp.Algorithm]string{
		otp.AlgorithmSHA1:   b32.EncodeToString([]byte("12345678901234567890")),
		otp.AlgorithmSHA256: b32.EncodeToString([]byte("12345678901234567890123456789012")),
		otp.AlgorithmSHA512: b32.EncodeToString([]byte("1234567890123456789012345678901234567890123456789012345678901234")),
	}
	for _, tc := range []struct {
		unix               int64
		sha1, sha256, s512 string
	}{
		{59, "94287082", "46119246", "90693936"},
		{1111111109, "07081804", "68084774", "25091201"},
		{1111111111, "14050471", "67062674", "99943326"},
		{1234567890, "89005924", "91819424", "93441116"},
		{2000000000, "69279037", "90698825", "38618901"},
		{20000000000, "65353130", "77737706", "47863826"},
	} {
		at := time.Unix(tc.unix, 0)
		for alg, want := range map[otp.Algorithm]string{otp.AlgorithmSHA1: tc.sha1, otp.AlgorithmSHA256: tc.sha256, otp.AlgorithmSHA512: tc.s512} {
			got, err := totplib.GenerateCodeCustom(seeds[alg], at, totplib.ValidateOpts{Digits: otp.DigitsEight, Algorithm: alg})
			if err != nil || got != want {
				t.Errorf("%v at %d = %s, %v; want %s", alg, tc.unix, got, err, want)
			}
		}
		six := tc.sha1[2:]
		if got, err := Code(seeds[otp.AlgorithmSHA1], at); err != nil || got != six {
			t.Errorf("Code at %d = %s, %v; want %s", tc.unix, got, err, six)
		}
		v := &Verifier{Now: func() time.Time { return at }}
		if err := v.Verify("u", seeds[otp.AlgorithmSHA1], six); err != nil {
			t.Errorf("Verify at %d: %v", tc.unix, err)
		}
	}
}

const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

func codeAt(t *testing.T, at time.Time) string {
	t.Helper()
	c, err := Code(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerify(t *testing.T) {
	base := time.Unix(1_800_000_000, 0) // a step boundary + 0
	now := base.Add(10 * time.Second)
	for _, tc := range []struct {
		name string
		code string
		want error
	}{
		{"current", codeAt(t, now), nil},
		{"one step behind", codeAt(t, now.Add(-Period)), nil},
		{"one step ahead", codeAt(t, now.Add(Period)), nil},
		{"two steps behind", codeAt(t, now.Add(-2*Period)), ErrWrongCode},
		{"two steps ahead", codeAt(t, now.Add(2*Period)), ErrWrongCode},
		{"wrong", "000000", ErrWrongCode},
		{"short", "12345", ErrMalformed},
		{"long", "1234567", ErrMalformed},
		{"letters", "12a456", ErrMalformed},
		{"space", " 12345", ErrMalformed},
		{"empty", "", ErrMalformed},
		{"unicode digits", "١٢٣٤٥٦", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{Now: func() time.Time { return now }}
			err := v.Verify("alice", secret, tc.code)
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if err != nil && !errors.Is(err, auth.ErrDenied) {
				t.Fatalf("%v is not an auth.ErrDenied", err)
			}
			if err != nil && tc.code != "" && strings.Contains(err.Error(), tc.code) {
				t.Fatalf("the error quotes the code: %v", err)
			}
		})
	}
	v := &Verifier{Now: func() time.Time { return now }}
	if err := v.Verify("alice", "not base32!", "123456"); !errors.Is(err, ErrSecret) {
		t.Fatalf("bad secret: %v", err)
	}
}

func TestReplay(t *testing.T) {
	now := time.Unix(1_800_000_010, 0)
	clock := now
	v := &Verifier{Now: func() time.Time { return clock }}
	c := codeAt(t, now)
	if err := v.Verify("alice", secret, c); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify("alice", secret, c); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay = %v", err)
	}
	// Still refused in the next step, where the code is within the skew.
	clock = now.Add(Period)
	if err := v.Verify("alice", secret, c); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay one step later = %v", err)
	}
	// Another user with the same secret and code is not a replay of alice's.
	if err := v.Verify("bob", secret, c); err != nil {
		t.Fatal(err)
	}
	// The previous step's code, not used yet, is accepted once.
	prev := codeAt(t, now.Add(-Period))
	clock = now
	if err := v.Verify("alice", secret, prev); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify("alice", secret, prev); !errors.Is(err, ErrReplayed) {
		t.Fatal(err)
	}
	// Entries age out once their steps cannot be accepted.
	if v.Len() != 3 {
		t.Fatalf("%d remembered", v.Len())
	}
	clock = now.Add(3 * Period)
	v.Prune()
	if v.Len() != 0 {
		t.Fatalf("%d remembered after pruning", v.Len())
	}
}

// The memory is bounded: when full of codes still acceptable it refuses
// (auth.ErrUnavailable) rather than forget one; once they age it accepts.
func TestReplayCacheBound(t *testing.T) {
	now := time.Unix(1_800_000_010, 0)
	clock := now
	v := &Verifier{Now: func() time.Time { return clock }, MaxEntries: 3}
	c := codeAt(t, now)
	for i := range 3 {
		if err := v.Verify(fmt.Sprint("u", i), secret, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Verify("u3", secret, c); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("full = %v", err)
	}
	clock = now.Add(2 * Period)
	if err := v.Verify("u3", secret, codeAt(t, clock)); err != nil {
		t.Fatal(err)
	}
	if v.Len() != 1 {
		t.Fatalf("%d remembered", v.Len())
	}
}

// One code raced from many goroutines is accepted exactly once.
func TestReplayConcurrent(t *testing.T) {
	now := time.Unix(1_800_000_010, 0)
	v := &Verifier{Now: func() time.Time { return now }}
	c := codeAt(t, now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v.Verify("alice", secret, c) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("accepted %d times", ok)
	}
}

func TestNewKey(t *testing.T) {
	k, err := NewKey("ftpsgate", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := b32.DecodeString(k.Secret); err != nil || len(b) != SecretSize {
		t.Fatalf("secret %d bytes, %v", len(b), err)
	}
	u, err := url.Parse(k.URI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/ftpsgate:alice" {
		t.Fatalf("URI %s", k.URI)
	}
	q := u.Query()
	if q.Get("secret") != k.Secret || q.Get("issuer") != "ftpsgate" || q.Get("digits") != "6" || q.Get("period") != "30" || q.Get("algorithm") != "SHA1" {
		t.Fatalf("URI %s", k.URI)
	}
	k2, _ := NewKey("ftpsgate", "alice")
	if k2.Secret == k.Secret {
		t.Fatal("two keys share a secret")
	}
	// A code from the new key verifies.
	now := time.Now()
	c, err := Code(k.Secret, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&Verifier{Now: func() time.Time { return now }}).Verify("alice", k.Secret, c); err != nil {
		t.Fatal(err)
	}
	qr, err := QR(k.URI, false)
	if err != nil || len(strings.Split(qr, "\n")) < 15 || !strings.ContainsAny(qr, "█▀▄") {
		t.Fatalf("QR %q, %v", qr, err)
	}
	if _, err := NewKey("", "alice"); err == nil {
		t.Fatal("no issuer accepted")
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in, pw, code string
		ok           bool
	}{
		{"secret123456", "secret", "123456", true},
		{"s123456", "s", "123456", true},
		{"123456", "", "", false},
		{"secret12345x", "", "", false},
		{"", "", "", false},
	} {
		pw, code, ok := Split(tc.in)
		if pw != tc.pw || code != tc.code || ok != tc.ok {
			t.Errorf("Split(%q) = %q, %q, %v", tc.in, pw, code, ok)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("123456", secret)
	f.Add("", "")
	f.Add("١٢٣٤٥٦", "a")
	now := time.Unix(1_800_000_010, 0)
	f.Fuzz(func(t *testing.T, code, sec string) {
		v := &Verifier{Now: func() time.Time { return now }}
		err := v.Verify("u", sec, code)
		if err == nil {
			if want, _ := Code(sec, now); len(code) != Digits {
				t.Fatalf("accepted %q (current %q)", code, want)
			}
			return
		}
		if !errors.Is(err, auth.ErrDenied) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

type mapReplay struct {
	used map[string]bool
	err  error
}

func (m *mapReplay) Use(user string, step uint64, ttl time.Duration) (bool, error) {
	if m.err != nil {
		return false, m.err
	}
	k := fmt.Sprint(user, step)
	if m.used[k] || ttl <= 0 {
		return false, nil
	}
	m.used[k] = true
	return true, nil
}

func TestVerifierReplayStore(t *testing.T) {
	key, err := NewKey("ftpsgate", "alice")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	code, err := Code(key.Secret, now)
	if err != nil {
		t.Fatal(err)
	}
	store := &mapReplay{used: map[string]bool{}}
	// Two gateways, one store: the second refuses the code.
	v1 := &Verifier{Now: func() time.Time { return now }, Replay: store}
	v2 := &Verifier{Now: func() time.Time { return now }, Replay: store}
	if err := v1.Verify("alice", key.Secret, code); err != nil {
		t.Fatal(err)
	}
	if err := v2.Verify("alice", key.Secret, code); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay on the other verifier: %v, want ErrReplayed", err)
	}
	store.err = errors.New("down")
	if err := v2.Verify("bob", key.Secret, code); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("store error: %v, want auth.ErrUnavailable", err)
	}
}
