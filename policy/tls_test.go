package policy

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseCipherSuites(t *testing.T) {
	ids, err := ParseCipherSuites([]string{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "tls_ecdhe_ecdsa_with_chacha20_poly1305_sha256"})
	if err != nil || len(ids) != 2 || ids[0] != tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 {
		t.Fatalf("ParseCipherSuites = %v, %v", ids, err)
	}
	for name, want := range map[string]string{
		"TLS_RSA_WITH_AES_128_CBC_SHA":          "insecure",
		"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA":    "refused",
		"TLS_RSA_WITH_AES_128_GCM_SHA256":       "insecure",
		"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA":   "insecure",
		"TLS_ECDHE_ECDSA_WITH_RC4_128_SHA":      "insecure",
		"TLS_AES_128_GCM_SHA256":                "TLS 1.3",
		"TLS_NULL_WITH_NULL":                    "not a known",
		"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "insecure",
	} {
		if _, err := ParseCipherSuites([]string{name}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
}

// An OpenSSL suite name gets its IANA name as a hint; a weak one gets the
// refusal of its IANA name, naming both.
func TestParseCipherSuitesOpenSSLNames(t *testing.T) {
	for name, want := range map[string]string{
		"ECDHE-RSA-AES128-GCM-SHA256":   `"ECDHE-RSA-AES128-GCM-SHA256" is an OpenSSL name: did you mean TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256?`,
		"ecdhe-ecdsa-chacha20-poly1305": "did you mean TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256?",
		"ECDHE-RSA-AES256-GCM-SHA384":   "did you mean TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384?",
		"AES128-SHA":                    "AES128-SHA (OpenSSL's name of TLS_RSA_WITH_AES_128_CBC_SHA) is insecure",
		"DES-CBC3-SHA":                  "(OpenSSL's name of TLS_RSA_WITH_3DES_EDE_CBC_SHA) is insecure",
		"ECDHE-RSA-AES128-SHA":          "(OpenSSL's name of TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA) is refused",
		"ECDHE-RSA-AES128-SHA256":       "(OpenSSL's name of TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256) is insecure",
	} {
		ids, err := ParseCipherSuites([]string{name})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, %v; want %q", name, ids, err, want)
		}
	}
	// Every entry of the table names a suite Go knows.
	known := map[string]bool{}
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		known[cs.Name] = true
	}
	for o, iana := range opensslSuiteNames {
		if !known[iana] {
			t.Errorf("%s maps to %s, which crypto/tls does not know", o, iana)
		}
	}
}

func TestParseCurves(t *testing.T) {
	ids, err := ParseCurves([]string{"X25519", "secp256r1", "P-384"})
	if err != nil || len(ids) != 3 || ids[1] != tls.CurveP256 {
		t.Fatalf("ParseCurves = %v, %v", ids, err)
	}
	if _, err := ParseCurves([]string{"brainpool"}); err == nil {
		t.Error("unknown curve accepted")
	}
}

func TestOverrideAndDescribe(t *testing.T) {
	base := TLSConfig{RequireProtectedData: true}
	o := base.With(Override{MinVersion: tls.VersionTLS13})
	if o.MinVersion != tls.VersionTLS13 || !o.RequireProtectedData {
		t.Fatalf("With = %+v", o)
	}
	d := strings.Join(base.Describe(), "\n")
	for _, want := range []string{"min_version: TLS 1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "data_session_reuse: user", "X25519"} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, "CBC") {
		t.Errorf("Describe shows a CBC suite:\n%s", d)
	}
}

func TestParsePinAndCertUser(t *testing.T) {
	cert, err := GenerateSelfSigned(nil)
	if err != nil {
		t.Fatal(err)
	}
	pin := SPKIPin(cert.Leaf)
	for _, s := range []string{base64.StdEncoding.EncodeToString(pin), "sha256/" + base64.StdEncoding.EncodeToString(pin), hex.EncodeToString(pin)} {
		got, err := ParsePin(s)
		if err != nil || string(got) != string(pin) {
			t.Errorf("ParsePin(%q) = %x, %v", s, got, err)
		}
	}
	if _, err := ParsePin("abc"); err == nil {
		t.Error("short pin accepted")
	}

	c := &x509.Certificate{Subject: pkix.Name{CommonName: "Alice"}, EmailAddresses: []string{"alice@example.com"}, DNSNames: []string{"alice.example.com"}}
	tests := []struct {
		m    CertUser
		user string
		ok   bool
	}{
		{CertUserNone, "bob", true},
		{CertUserCN, "Alice", true},
		{CertUserCN, "alice", false}, // exact by default
		{CertUserCN, "bob", false},
		{CertUserSANEmail, "alice@example.com", true},
		{CertUserSANEmail, "alice", false},
		{CertUserSANDNS, "alice.example.com", true},
	}
	for _, tt := range tests {
		err := tt.m.CheckCertUser(c, tt.user)
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrCertUserMismatch) {
			t.Errorf("%s/%s: %v", tt.m, tt.user, err)
		}
	}
	if err := CertUserCN.CheckCertUser(nil, "anyone"); err != nil {
		t.Errorf("no certificate (client_auth request): %v", err)
	}
}

// TestCertUserCase: names compare exactly unless the case-insensitive
// setting is on, and then only ASCII letters fold.
func TestCertUserCase(t *testing.T) {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}, EmailAddresses: []string{"Alice@Example.com"}, DNSNames: []string{"k.example.com"}}
	tests := []struct {
		m          CertUser
		user       string
		exact, any bool // allowed by default; allowed with client_cert_user_case_insensitive
	}{
		{CertUserCN, "alice", true, true},
		{CertUserCN, "ALICE", false, true},
		{CertUserCN, "Alice", false, true},
		{CertUserCN, "alicf", false, false},
		{CertUserCN, "alice ", false, false},
		{CertUserSANEmail, "Alice@Example.com", true, true},
		{CertUserSANEmail, "alice@example.com", false, true},
		{CertUserSANDNS, "K.EXAMPLE.COM", false, true},
		{CertUserSANDNS, "\u212a.example.com", false, false}, // the Kelvin sign folds to k in Unicode, not here
	}
	for _, tt := range tests {
		err := tt.m.CheckCertUser(c, tt.user)
		if (err == nil) != tt.exact || err != nil && !errors.Is(err, ErrCertUserMismatch) {
			t.Errorf("%s/%q: %v, want allowed %v", tt.m, tt.user, err, tt.exact)
		}
		for _, fold := range []bool{false, true} {
			want := tt.exact || fold && tt.any
			err := TLSConfig{ClientCertUser: tt.m, ClientCertUserCaseInsensitive: fold}.CheckCertUser(c, tt.user)
			if (err == nil) != want {
				t.Errorf("%s/%q case-insensitive %v: %v, want allowed %v", tt.m, tt.user, fold, err, want)
			}
		}
	}
}

func TestLoginPolicy(t *testing.T) {
	p := LoginPolicy{AllowedSiteCommands: []string{"CHMOD"}}
	for _, u := range []string{"anonymous", "FTP", "Anonymous"} {
		if !errors.Is(p.CheckUser(u), ErrAnonymous) {
			t.Errorf("%s allowed", u)
		}
	}
	if err := (LoginPolicy{AllowAnonymous: true}).CheckUser("ftp"); err != nil {
		t.Error(err)
	}
	if err := p.CheckSite("chmod 644 f"); err != nil {
		t.Error(err)
	}
	if err := p.CheckSite("EXEC rm -rf /"); !errors.Is(err, ErrSiteCommand) {
		t.Errorf("SITE EXEC: %v", err)
	}
}

// TestReloader: a changed file is served, a bad one keeps the old, and
// expiry is reported at most daily.
func TestReloader(t *testing.T) {
	dir := t.TempDir()
	write := func(cert *tls.Certificate) {
		certPEM, keyPEM := encodePair(t, cert)
		if err := os.WriteFile(filepath.Join(dir, "c.pem"), certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "k.pem"), keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	first, _ := GenerateSelfSigned([]string{"first"})
	second, _ := GenerateSelfSigned([]string{"second"})
	write(first)
	store := NewCertStore(first)
	var mu sync.Mutex
	var events []string
	now := time.Now()
	r := &Reloader{
		Store: store, CertFile: filepath.Join(dir, "c.pem"), KeyFile: filepath.Join(dir, "k.pem"),
		OnEvent: func(e CertEvent) { mu.Lock(); events = append(events, e.Kind); mu.Unlock() },
		Now:     func() time.Time { return now },
	}
	r.Init()
	if changed, err := r.Reload(false); changed || err != nil {
		t.Fatalf("unchanged files reloaded: %v %v", changed, err)
	}
	write(second)
	if changed, err := r.Reload(false); !changed || err != nil || store.Get().Leaf.DNSNames[1] != "second" {
		t.Fatalf("changed files not reloaded: %v %v", changed, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "c.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := r.Reload(false); changed || err == nil || store.Get().Leaf.DNSNames[1] != "second" {
		t.Fatalf("bad file: changed=%v err=%v", changed, err)
	}
	// Expiry: a year-long certificate warns from 30 days before, once a day.
	now = store.NotAfter().Add(-10 * 24 * time.Hour)
	r.CheckExpiry()
	r.CheckExpiry()
	now = now.Add(25 * time.Hour)
	r.CheckExpiry()
	now = store.NotAfter().Add(time.Hour)
	r.CheckExpiry()
	mu.Lock()
	defer mu.Unlock()
	got := strings.Join(events, ",")
	if got != "reloaded,reload_failed,expiring,expiring,expired" {
		t.Fatalf("events = %s", got)
	}
	if d := store.DaysLeft(store.NotAfter().Add(-72 * time.Hour)); d != 3 {
		t.Fatalf("DaysLeft = %d", d)
	}
}
