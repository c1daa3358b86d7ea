package tlsscan

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeCerts makes a CA and a server certificate for 127.0.0.1 that the
// scanner has no cause to complain about: 90 days, revocation URIs, ECDSA
// P-256. It returns the CA file, the chain file and the key file.
func writeCerts(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ftpsgate scan CA", Organization: []string{"ftpsgate tests"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost", Organization: []string{"ftpsgate tests"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		CRLDistributionPoints: []string{"http://127.0.0.1/scan-ca.crl"},
		OCSPServer:            []string{"http://127.0.0.1/ocsp"},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for f, b := range map[string][]byte{
		caFile:   pemOf("CERTIFICATE", caDER),
		certFile: append(pemOf("CERTIFICATE", der), pemOf("CERTIFICATE", caDER)...),
		keyFile:  pemOf("PRIVATE KEY", keyDER),
	} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startGateway builds and runs the gateway with the scan certificate.
func startGateway(t *testing.T, dir, certFile, keyFile string) (explicit, implicit string) {
	t.Helper()
	bin := filepath.Join(dir, "ftpsgate")
	build := exec.Command("go", "build", "-o", bin, "github.com/ftpsgate/ftpsgate/cmd/ftpsgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	explicit = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	implicit = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf(`listeners:
  - {name: explicit, address: "%s", tls: explicit, require_tls: true}
  - {name: implicit, address: "%s", tls: implicit}
tls: {cert_file: "%s", key_file: "%s"}
backend: {address: "127.0.0.1:9", tls: none}
passive: {ports: 59900-59909}
# The scanner's probes (SSLv2, SSLv3, TLS 1.0...) are failed handshakes and
# garbage lines: without this the gateway bans the scanner after five.
bans: {allow: ["127.0.0.0/8"]}
log: {level: warn, format: json}
`, explicit, implicit, certFile, keyFile)
	cfgFile := filepath.Join(dir, "ftpsgate.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cfgFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
	})
	for _, addr := range []string{explicit, implicit} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("gateway does not listen on %s", addr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return explicit, implicit
}

// finding is one entry of testssl.sh's JSON report.
type finding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

// scan runs testssl.sh and returns its findings.
func scan(ctx context.Context, t *testing.T, bin, caFile, addr, name, reports string, starttls bool) []finding {
	jsonFile := filepath.Join(reports, name+".json")
	textFile := filepath.Join(reports, name+".txt")
	_ = os.Remove(jsonFile)
	args := []string{"--add-ca", caFile, "--jsonfile", jsonFile, "--color", "0", "--warnings", "batch", "--quiet"}
	if starttls {
		args = append(args, "--starttls", "ftp")
	}
	args = append(args, addr)
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	_ = os.WriteFile(textFile, out, 0o644)
	if err != nil && ctx.Err() != nil {
		t.Errorf("%s: testssl.sh did not finish: %v", name, ctx.Err())
		return nil
	}
	b, rerr := os.ReadFile(jsonFile)
	if rerr != nil {
		t.Errorf("%s: no JSON report (testssl.sh: %v):\n%s", name, err, out)
		return nil
	}
	var fs []finding
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Errorf("%s: JSON report: %v", name, err)
	}
	return fs
}

// check asserts the audit criteria on one report.
func check(t *testing.T, name string, fs []finding) {
	byID := map[string]finding{}
	for _, f := range fs {
		byID[f.ID] = f
		switch f.Severity {
		case "MEDIUM", "HIGH", "CRITICAL":
			t.Errorf("%s: %s finding %s: %s", name, f.Severity, f.ID, f.Finding)
		}
		// cipherorder_TLSv1_2 and the like list the suites offered, by
		// their OpenSSL names.
		if strings.HasPrefix(f.ID, "cipherorder_") || strings.HasPrefix(f.ID, "cipher-") {
			for _, suite := range strings.Fields(f.Finding) {
				if !strings.ContainsAny(suite, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
					continue // "--" and the like
				}
				aead := strings.Contains(suite, "GCM") || strings.Contains(suite, "CHACHA20") || strings.Contains(suite, "CCM")
				if !aead {
					t.Errorf("%s: CBC (non-AEAD) suite offered: %s (%s)", name, suite, f.ID)
				}
				if !strings.HasPrefix(suite, "TLS_AES") && !strings.HasPrefix(suite, "TLS_CHACHA20") && !strings.HasPrefix(suite, "ECDHE-") {
					t.Errorf("%s: suite without forward secrecy: %s (%s)", name, suite, f.ID)
				}
			}
		}
	}
	for _, id := range []string{"SSLv2", "SSLv3", "TLS1", "TLS1_1"} {
		f, ok := byID[id]
		if !ok || !strings.Contains(f.Finding, "not offered") {
			t.Errorf("%s: %s: %q, want not offered", name, id, f.Finding)
		}
	}
	if f := byID["TLS1_2"]; !strings.Contains(f.Finding, "offered") || strings.Contains(f.Finding, "not offered") {
		t.Errorf("%s: TLS 1.2 not offered: %q", name, f.Finding)
	}
	// "Obsolete CBC ciphers": cipherlist_AVERAGE in testssl.sh 3.0,
	// cipherlist_OBSOLETED in 3.2.
	cbc, ok := byID["cipherlist_OBSOLETED"]
	if !ok {
		cbc, ok = byID["cipherlist_AVERAGE"]
	}
	if !ok || !strings.Contains(cbc.Finding, "not offered") {
		t.Errorf("%s: obsolete CBC ciphers: %q", name, cbc.Finding)
	}
	if f := byID["cipherlist_STRONG"]; f.Finding != "offered" {
		t.Errorf("%s: strong (AEAD) ciphers: %q, want offered", name, f.Finding)
	}
	if f, ok := byID["cipherorder_TLSv1_2"]; !ok || len(strings.Fields(f.Finding)) == 0 {
		t.Errorf("%s: no TLS 1.2 cipher list in the report", name)
	}
	for _, id := range []string{"cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW", "cipherlist_3DES_IDEA"} {
		if f, ok := byID[id]; ok && !strings.Contains(f.Finding, "not offered") {
			t.Errorf("%s: %s offered: %q", name, id, f.Finding)
		}
	}
}

func TestTestsslScan(t *testing.T) {
	if os.Getenv("FTPSGATE_TLSSCAN") != "1" {
		t.Skip("set FTPSGATE_TLSSCAN=1 to scan with testssl.sh (CI does, on a machine with nothing else running)")
	}
	bin, err := exec.LookPath("testssl")
	if err != nil {
		if bin, err = exec.LookPath("testssl.sh"); err != nil {
			t.Fatal("testssl.sh is not installed (Debian package testssl.sh)")
		}
	}
	dir := t.TempDir()
	reports := os.Getenv("FTPSGATE_TLSSCAN_DIR")
	if reports == "" {
		reports = dir
	} else if err := os.MkdirAll(reports, 0o755); err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile := writeCerts(t, dir)
	explicit, implicit := startGateway(t, dir, certFile, keyFile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	var explicitFindings, implicitFindings []finding
	wg.Add(2)
	go func() {
		defer wg.Done()
		explicitFindings = scan(ctx, t, bin, caFile, explicit, "explicit", reports, true)
	}()
	go func() {
		defer wg.Done()
		implicitFindings = scan(ctx, t, bin, caFile, implicit, "implicit", reports, false)
	}()
	wg.Wait()
	check(t, "explicit", explicitFindings)
	check(t, "implicit", implicitFindings)
	t.Logf("testssl.sh reports in %s", reports)
}
