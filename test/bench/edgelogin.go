package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// startEdge writes a users file with one user (edgeUser, a fresh random
// password, mapped to the bench's vsftpd account) with `ftpsgate users
// add`, and starts a gateway with auth.mode gateway on it. A binary that
// knows neither gives a target with na set, not an error of the run.
func startEdge(ctx context.Context, e *env) (*target, account, *gateway) {
	t := &target{key: lEdge}
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.na = err.Error()
		return t, account{}, nil
	}
	// Upper, lower, digit and symbol, whatever the random part holds: a
	// password policy must not refuse it.
	a := account{Name: edgeUser, Password: "Edge-9x" + hex.EncodeToString(rnd[:])}
	dir := filepath.Join(e.dir, "ftpsgate-edge")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.na = err.Error()
		return t, a, nil
	}
	usersPath := filepath.Join(dir, "users.yaml")
	bpwPath := filepath.Join(dir, "backend.password")
	if err := os.WriteFile(bpwPath, []byte(e.acct.Password+"\n"), 0o600); err != nil {
		t.na = err.Error()
		return t, a, nil
	}
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(actx, e.gatewayBin, "users", "add", a.Name, "--file", usersPath,
		"--password-stdin", "--backend-user", e.acct.Name, "--backend-password-file", bpwPath)
	cmd.Stdin = strings.NewReader(a.Password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.na = fmt.Sprintf("ftpsgate users add failed (%v): %s", err, firstLine(out))
		logf("features: edge: n/a: %s", t.na)
		return t, a, nil
	}
	if err := checkBindable(edgeBlock); err != nil {
		t.na = err.Error()
		return t, a, nil
	}
	extra := hashYAML("uploads") + fmt.Sprintf("auth:\n  mode: gateway\n  providers: [local]\n  local:\n    users_file: %q\n", usersPath)
	g, err := startGatewayWith(ctx, e, "ftpsgate-edge", e.plainBackend, "none", edgeBlock, extra)
	if err != nil {
		t.na = "gateway with auth.mode gateway did not start: " + oneLine(err)
		logf("features: edge: n/a: %s", t.na)
		return t, a, nil
	}
	t.addr, t.cpu = g.Addr, processCPU(g.proc.pid())
	return t, a, g
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(no output)"
	}
	return oneLine(errors.New(s))
}

// oneLogin connects, secures the control connection, logs in and quits.
func oneLogin(ctx context.Context, e *env, addr string, a account) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := dialFTPS(ctx, addr, e.clientTLS)
	if err != nil {
		return 0, err
	}
	if _, err := c.cmd(ftp.StatusUserOK, "USER", a.Name); err != nil {
		c.close()
		return 0, err
	}
	if _, err := c.cmd(ftp.StatusLoggedIn, "PASS", a.Password); err != nil {
		c.close()
		return 0, err
	}
	if err := c.quit(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
