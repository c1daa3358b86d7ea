package local

import (
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustHash(t testing.TB, pw string) string {
	t.Helper()
	s, err := HashPassword(pw, testParams)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const testTOTPSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" // 20 bytes

func TestParseFull(t *testing.T) {
	h := mustHash(t, "pw")
	pinHex := strings.Repeat("ab", 32)
	pinB64 := FormatPin([32]byte{1, 2, 3})
	data := fmt.Sprintf(`users:
  alice:
    password: %s
    groups: [partners, "uploaders"]
    disabled: false
    factors: [password, totp]
    totp_secret: %s
    pins: ["%s", "%s"]
    backend_user: legacy
    backend_password_env: ALICE_PW
    password_changed: 2026-11-01T10:00:00Z
    password_history: ["%s"]
  ldapbob:
    factors: [password, totp]
    totp_secret: %s
`, h, strings.ToLower(testTOTPSecret), pinHex, pinB64, h, testTOTPSecret)
	f, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	a := f.Users["alice"]
	if a == nil || a.Password != h || len(a.Groups) != 2 || a.Groups[1] != "uploaders" || a.Disabled ||
		len(a.Factors) != 2 || len(a.Pins) != 2 || a.BackendUser != "legacy" || a.BackendPasswordEnv != "ALICE_PW" ||
		!a.PasswordChanged.Equal(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)) || len(a.PasswordHistory) != 1 {
		t.Fatalf("alice = %+v", a)
	}
	if b := f.Users["ldapbob"]; b == nil || b.Password != "" || b.TOTPSecret != testTOTPSecret {
		t.Fatalf("ldapbob = %+v", b)
	}
	// Marshal -> Parse is stable.
	out, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	f2, err := Parse(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out2, _ := f2.Marshal()
	if string(out) != string(out2) {
		t.Fatalf("not stable:\n%s\n---\n%s", out, out2)
	}
	for _, empty := range []string{"", "users:\n", "# nothing\n", "users: {}\n"} {
		f, err := Parse([]byte(empty))
		if err != nil || len(f.Users) != 0 {
			t.Errorf("Parse(%q) = %v, %v", empty, f, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	h := mustHash(t, "pw")
	for _, tc := range []struct{ name, in, want string }{
		{"top key", "userz: {}\n", `unknown key "userz"`},
		{"not a mapping", "- a\n", "want a mapping"},
		{"users list", "users: [a]\n", "want a mapping of user names"},
		{"user key", "users:\n  alice:\n    passwd: x\n", `users.alice (line 3): unknown key "passwd"`},
		{"user not mapping", "users:\n  alice: x\n", "users.alice (line 2): want a mapping"},
		{"bad hash", "users:\n  alice:\n    password: $2y$10$abc\n", "users.alice.password: not an argon2id"},
		{"bad history", "users:\n  alice:\n    password_history: [x]\n", "users.alice.password_history: entry 1"},
		{"history scalar", "users:\n  alice:\n    password_history: " + h + "\n", "users.alice.password_history (line 3): want a list"},
		{"disabled string", "users:\n  alice:\n    disabled: \"yes\"\n", "users.alice.disabled (line 3): want true or false"},
		{"factor", "users:\n  alice:\n    factors: [password, sms]\n", `users.alice.factors: unknown factor "sms"`},
		{"factor twice", "users:\n  alice:\n    factors: [totp, totp]\n", "given twice"},
		{"totp short", "users:\n  alice:\n    totp_secret: JBSWY3DPEHPK3PXP\n", "users.alice.totp_secret: 80 bits"},
		{"totp base32", "users:\n  alice:\n    totp_secret: \"not base32!\"\n", "users.alice.totp_secret: not base32"},
		{"pin", "users:\n  alice:\n    pins: [abc]\n", "users.alice.pins: entry 1"},
		{"pin short b64", "users:\n  alice:\n    pins: [\"sha256/AAAA\"]\n", "32 bytes"},
		{"both backend pw", "users:\n  alice:\n    backend_password_env: A\n    backend_password_file: /x\n", "not both"},
		{"changed", "users:\n  alice:\n    password_changed: yesterday\n", "users.alice.password_changed (line 3): want an RFC 3339"},
		{"key twice", "users:\n  alice:\n    groups: [a]\n    groups: [b]\n", "groups"},
		{"user twice", "users:\n  alice: {}\n  alice: {}\n", "alice"},
		{"user name", "users:\n  \"al ice\": {}\n", "contains a space"},
		{"syntax", "users:\n  alice: [\n", "line"},
		{"password list", "users:\n  alice:\n    password: [a]\n", "users.alice.password (line 3): want a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), h) || strings.Contains(err.Error(), "$2y$") {
				t.Fatalf("the error quotes a hash: %v", err)
			}
		})
	}
}

func TestParsePin(t *testing.T) {
	want := [32]byte{0xab, 0xcd}
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{FormatPin(want), true},
		{"abcd" + strings.Repeat("00", 30), true},
		{"ABCD" + strings.Repeat("00", 30), true},
		{"sha256/" + strings.TrimRight(FormatPin(want)[7:], "="), false}, // unpadded
		{"sha1/" + FormatPin(want)[7:], false},
		{strings.Repeat("0", 63), false},
		{strings.Repeat("g", 64), false},
		{"", false},
	} {
		got, err := ParsePin(tc.in)
		if tc.ok != (err == nil) || (tc.ok && got != want) {
			t.Errorf("ParsePin(%q) = %x, %v", tc.in, got, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("users:\n  alice:\n    password: $argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n    groups: [a]\n    disabled: true\n"))
	f.Add([]byte("users:\n  bob:\n    factors: [client_cert]\n    pins: [\"sha256/AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"]\n    password_changed: 2026-01-01T00:00:00Z\n"))
	f.Add([]byte("users: {x: {totp_secret: JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		out, err := file.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		file2, err := Parse(out)
		if err != nil {
			t.Fatalf("Marshal wrote what Parse refuses: %v\n%s", err, out)
		}
		out2, err := file2.Marshal()
		if err != nil || string(out) != string(out2) {
			t.Fatalf("not stable:\n%s\n---\n%s", out, out2)
		}
	})
}

func FuzzParsePin(f *testing.F) {
	f.Add(FormatPin([32]byte{1}))
	f.Add(strings.Repeat("ab", 32))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePin(s)
		if err != nil {
			return
		}
		if q, err := ParsePin(FormatPin(p)); err != nil || q != p {
			t.Fatalf("round trip of %q: %v", s, err)
		}
	})
}

func TestEditCreatesAndKeepsMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	err := Edit(path, func(f *File) error {
		f.Users["alice"] = &User{Password: mustHash(t, "pw"), Groups: []string{"g"}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat = %v, %v", fi, err)
	}
	// A refused change writes nothing.
	boom := errors.New("boom")
	if err := Edit(path, func(f *File) error { delete(f.Users, "alice"); return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	// An invalid result is refused, naming the user.
	err = Edit(path, func(f *File) error { f.Users["bob"] = &User{Factors: []string{"sms"}}; return nil })
	if err == nil || !strings.Contains(err.Error(), "users.bob.factors") {
		t.Fatalf("Edit = %v", err)
	}
	// A 0640 file stays 0640.
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := Edit(path, func(f *File) error { f.Users["alice"].Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	data, _, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data)
	if err != nil || len(f.Users) != 1 || !f.Users["alice"].Disabled {
		t.Fatalf("file = %+v, %v", f, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	// No temporary files are left.
	ents, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("left %s", e.Name())
		}
	}
}

func TestEditRefusesWritableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(path, []byte("users: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o620); err != nil {
		t.Fatal(err)
	}
	err := Edit(path, func(*File) error { return nil })
	if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "chmod go-w") {
		t.Fatalf("Edit = %v", err)
	}
}

// Two goroutines editing at once lose nothing: every user each added is
// in the file.
func TestEditConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	h := mustHash(t, "pw")
	const per = 15
	var wg sync.WaitGroup
	errs := make(chan error, 2*per)
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				errs <- Edit(path, func(f *File) error {
					f.Users[fmt.Sprintf("u%d-%d", g, i)] = &User{Password: h}
					return nil
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	data, _, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Users) != 2*per {
		t.Fatalf("%d users, want %d", len(f.Users), 2*per)
	}
}

func TestReadFileNotExist(t *testing.T) {
	if _, _, err := readFile(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
}

func FuzzDecodeTOTPSecret(f *testing.F) {
	f.Add(testTOTPSecret)
	f.Add(strings.ToLower(testTOTPSecret) + "====")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeTOTPSecret(s)
		if err != nil {
			return
		}
		if len(b) < minTOTPSecret {
			t.Fatalf("accepted %d bytes", len(b))
		}
		if b2, err := DecodeTOTPSecret(base32.StdEncoding.EncodeToString(b)); err != nil || string(b2) != string(b) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
