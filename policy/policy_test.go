package policy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseTLSVersion(t *testing.T) {
	for in, want := range map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13, "": tls.VersionTLS12} {
		if got, err := ParseTLSVersion(in); err != nil || got != want {
			t.Errorf("ParseTLSVersion(%q) = %#x, %v", in, got, err)
		}
	}
	for _, bad := range []string{"1.1", "1.0", "tls1.2", "ssl3"} {
		if _, err := ParseTLSVersion(bad); err == nil {
			t.Errorf("ParseTLSVersion(%q) accepted", bad)
		}
	}
}

func TestServerConfigIsStrict(t *testing.T) {
	cert, err := GenerateSelfSigned([]string{"gw.example", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := TLSConfig{}.ServerConfig(NewCertStore(cert))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("MinVersion = %#x", cfg.MinVersion)
	}
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if insecure[id] || !strings.Contains(name, "ECDHE") || !(strings.Contains(name, "GCM") || strings.Contains(name, "CHACHA20")) {
			t.Errorf("suite %s is not ECDHE+AEAD", name)
		}
	}
	if cfg.SessionTicketsDisabled {
		t.Error("session tickets must stay on: data connections resume the control session")
	}
	got, err := cfg.GetCertificate(nil)
	if err != nil || got != cert {
		t.Fatalf("GetCertificate = %v, %v", got, err)
	}
	if err := got.Leaf.VerifyHostname("gw.example"); err != nil {
		t.Error(err)
	}
	if err := got.Leaf.VerifyHostname("192.0.2.1"); err != nil {
		t.Error(err)
	}
	if TLS13, _ := (TLSConfig{MinVersion: tls.VersionTLS13}).ServerConfig(NewCertStore(cert)); TLS13.MinVersion != tls.VersionTLS13 {
		t.Error("min_version 1.3 not applied")
	}
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateAndLoad(t *testing.T) {
	dir := t.TempDir()
	cert, err := GenerateSelfSigned(nil)
	if err != nil {
		t.Fatal(err)
	}
	certFile := writePEM(t, dir, "c.pem", "CERTIFICATE", cert.Certificate[0])
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writePEM(t, dir, "k.pem", "PRIVATE KEY", keyDER)

	ok := TLSConfig{CertFile: certFile, KeyFile: keyFile}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, generated, err := ok.LoadCertificate(nil); err != nil || generated {
		t.Fatalf("LoadCertificate: generated=%v err=%v", generated, err)
	}
	if _, generated, err := (TLSConfig{}).LoadCertificate(nil); err != nil || !generated {
		t.Fatalf("self-signed: generated=%v err=%v", generated, err)
	}
	for _, tc := range []struct {
		c    TLSConfig
		want string
	}{
		{TLSConfig{CertFile: certFile}, "key_file:"},
		{TLSConfig{KeyFile: keyFile}, "cert_file:"},
		{TLSConfig{CertFile: certFile, KeyFile: filepath.Join(dir, "missing")}, "cert_file:"},
		{TLSConfig{MinVersion: tls.VersionTLS11}, "min_version:"},
		{TLSConfig{ClientCertUserCaseInsensitive: true}, "client_cert_user_case_insensitive:"},
	} {
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.c, err, tc.want)
		}
	}

	b := BackendTLS{CAFile: certFile}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg, err := b.ClientConfig("10.0.0.5")
	if err != nil || cfg.ServerName != "10.0.0.5" || cfg.RootCAs == nil {
		t.Fatalf("ClientConfig = %+v, %v", cfg, err)
	}
	if err := (BackendTLS{CAFile: keyFile}).Validate(); err == nil || !strings.Contains(err.Error(), "ca_file:") {
		t.Errorf("a key as CA file: %v", err)
	}
}

func TestSessionConfigHasOwnCache(t *testing.T) {
	base, err := BackendTLS{ServerName: "ftp.internal"}.ClientConfig("10.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	a, b := SessionConfig(base), SessionConfig(base)
	if a.ClientSessionCache == nil || a.ClientSessionCache == b.ClientSessionCache || base.ClientSessionCache != nil {
		t.Fatal("each session needs its own cache, and the base none")
	}
	if a.ServerName != "ftp.internal" {
		t.Fatalf("ServerName = %q", a.ServerName)
	}
	cs := &tls.ClientSessionState{}
	a.ClientSessionCache.Put("any", cs)
	if got, ok := a.ClientSessionCache.Get("other key"); !ok || got != cs {
		t.Fatal("the cache must return the control session whatever the key")
	}
	a.ClientSessionCache.Put("any", &tls.ClientSessionState{})
	if got, _ := a.ClientSessionCache.Get("any"); got != cs {
		t.Fatal("a later session (a data connection's ticket) must not replace the control one")
	}
	a.ClientSessionCache.Put("any", nil)
	if _, ok := a.ClientSessionCache.Get("any"); !ok {
		t.Fatal("a nil Put must not drop the control session")
	}
	if _, ok := b.ClientSessionCache.Get("any"); ok {
		t.Fatal("sessions leak between caches")
	}
}

func TestDataPolicy(t *testing.T) {
	strict := DataPolicy{RequireProtected: true}
	if err := strict.CheckProt(ProtClear); !errors.Is(err, ErrProtDenied) {
		t.Errorf("PROT C under require_protected_data: %v", err)
	}
	if err := strict.CheckProt(ProtPrivate); err != nil {
		t.Error(err)
	}
	if err := strict.CheckProt(ProtSafe); !errors.Is(err, ErrProtNotSupported) {
		t.Errorf("PROT S: %v", err)
	}
	if err := (DataPolicy{}).CheckProt(ProtClear); err != nil {
		t.Errorf("PROT C allowed: %v", err)
	}
	if err := strict.CheckTransfer(ProtClear); !errors.Is(err, ErrClearData) {
		t.Errorf("clear transfer: %v", err)
	}

	client := netip.MustParseAddr("192.0.2.7")
	tests := []struct {
		p      DataPolicy
		target string
		want   error
	}{
		{DataPolicy{}, "192.0.2.7:5000", ErrActiveDisabled},
		{DataPolicy{ActiveEnabled: true}, "192.0.2.7:5000", nil},
		{DataPolicy{ActiveEnabled: true}, "[::ffff:192.0.2.7]:5000", nil},
		{DataPolicy{ActiveEnabled: true}, "192.0.2.8:5000", ErrBounce},
		{DataPolicy{ActiveEnabled: true}, "192.0.2.7:25", ErrBounce},
		{DataPolicy{ActiveEnabled: true}, "192.0.2.7:1023", ErrBounce},
		{DataPolicy{ActiveEnabled: true}, "192.0.2.7:1024", nil},
	}
	for _, tt := range tests {
		err := tt.p.CheckActiveTarget(client, netip.MustParseAddrPort(tt.target))
		if !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
			t.Errorf("CheckActiveTarget(%s, enabled=%v) = %v, want %v", tt.target, tt.p.ActiveEnabled, err, tt.want)
		}
	}
	for _, v := range []string{"USER", "PASS", "AUTH", "FEAT", "QUIT"} {
		if !AllowedBeforeLogin(v) {
			t.Errorf("%s must be allowed before login", v)
		}
	}
	for _, v := range []string{"RETR", "STOR", "LIST", "PASV", "SITE", "DELE"} {
		if AllowedBeforeLogin(v) {
			t.Errorf("%s must wait for login", v)
		}
	}
}
