package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// buildGateway compiles cmd/ftpsgate into dir.
func buildGateway(ctx context.Context, moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "ftpsgate")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ftpsgate")
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/ftpsgate: %v\n%s", err, out)
	}
	return bin, nil
}

// gateway is a running ftpsgate process with one explicit FTPS listener.
type gateway struct {
	Addr       string
	Admin      string // the admin API, with Go's profiles (admin.pprof) for --profile
	AdminToken string // its bearer token (admin.token_file)
	proc       *process
}

// startGateway runs `ftpsgate run --config FILE` in front of backendAddr
// (backendTLS "none" or "explicit") with the documented YAML format, the
// bench's certificate, and logs at info level in JSON (the production
// setting: one line per command and per transfer) to a file.
func startGateway(ctx context.Context, e *env, name, backendAddr, backendTLS string, pasv portBlock) (*gateway, error) {
	return startGatewayWith(ctx, e, name, backendAddr, backendTLS, pasv, "")
}

// startGatewayWith is startGateway with extraYAML appended to the
// configuration: top-level sections the fixed part does not have
// (transfers, auth).
func startGatewayWith(ctx context.Context, e *env, name, backendAddr, backendTLS string, pasv portBlock, extraYAML string) (*gateway, error) {
	return startGatewayEnv(ctx, e, name, backendAddr, backendTLS, pasv, extraYAML, nil)
}

// startGatewayEnv is startGatewayWith with environment variables for the
// gateway (FTPSGATE_ overrides of keys the fixed part writes).
func startGatewayEnv(ctx context.Context, e *env, name, backendAddr, backendTLS string, pasv portBlock, extraYAML string, environ []string) (*gateway, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	aport, err := freePort()
	if err != nil {
		return nil, err
	}
	g := &gateway{Addr: loopback(port), Admin: loopback(aport), AdminToken: rand.Text()}
	dir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	tokenPath := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenPath, []byte(g.AdminToken+"\n"), 0o600); err != nil {
		return nil, err
	}
	ca := ""
	if backendTLS != "none" {
		ca = e.pki.CAFile
	}
	yaml := fmt.Sprintf(`listeners:
  - name: explicit
    address: %s
    tls: explicit
    require_tls: true
tls:
  cert_file: %q
  key_file: %q
  min_version: "1.2"
  require_protected_data: true
backend:
  address: %s
  tls: %s
  ca_file: %q
passive:
  public_host: 127.0.0.1
  ports: %d-%d
limits:
  # Every client of the benchmark comes from 127.0.0.1, thousands at once.
  max_sessions_per_ip: 0
  max_prelogin_per_ip: 0
  max_sessions: 20000
  max_passive_per_ip: 0 # one address plays every client here
timeouts:
  idle: 10m
  connect: 10s
  handshake: 30s
  data_accept: 60s
  shutdown_grace: 5s
log:
  level: info
  format: json
admin:
  address: %s
  token_file: %q
  pprof: true
`, g.Addr, e.pki.ChainFile, e.pki.KeyFile, backendAddr, backendTLS, ca, pasv.lo, pasv.hi, g.Admin, tokenPath)
	yaml += extraYAML
	confPath := filepath.Join(dir, "ftpsgate.yaml")
	if err := os.WriteFile(confPath, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	g.proc, err = startProcess(name, filepath.Join(dir, "ftpsgate.log"), environ, e.gatewayBin, "run", "--config", confPath)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return g, waitForPort(wctx, g.Addr, g.proc)
}

// pinOfFile is the sha256/BASE64 pin of the first certificate in a PEM
// file (its SubjectPublicKeyInfo's SHA-256).
func pinOfFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "", fmt.Errorf("%s: no PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256/" + base64.StdEncoding.EncodeToString(sum[:]), nil
}
