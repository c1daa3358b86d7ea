package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// hopCount is what the hop relay has carried so far (connections that
// ended).
type hopCount struct {
	ctrlConns, dataConns int
	dataBytes            int64
}

// startHop starts the hop relay (the bench itself, hop-relay mode) on
// hopHost at vsftpd's control port and passive range, and a gateway alike
// whose backend is hopHost (backend.server_name 127.0.0.1, so that
// vsftpd's certificate still passes); t gets the gateway's address, the
// CPU of both, and the relay's alone (side). The processes stop with the
// bench (stopAll). It returns what the relay has carried, read from its
// log.
func startHop(ctx context.Context, e *env, backend string, t *target) (func() hopCount, error) {
	ln, err := net.Listen("tcp4", net.JoinHostPort(hopHost, "0"))
	if err != nil {
		return nil, fmt.Errorf("%s is not bindable here (the hop relay listens there): %w", hopHost, err)
	}
	ln.Close()
	_, ctrl, ok := strings.Cut(backend, "127.0.0.1:")
	ctrlPort, err := strconv.Atoi(ctrl)
	if !ok || err != nil {
		return nil, fmt.Errorf("vsftpd's address %q is not 127.0.0.1:PORT", backend)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("the bench's own executable (for the hop relay): %w", err)
	}
	dir := filepath.Join(e.dir, "hop")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pasv := passiveBlocks[1] // the FTPS vsftpd's
	r, err := startProcess("bench-hop-relay", filepath.Join(dir, "relay.log"), nil, exe, hopRelayCmd,
		"--listen", hopHost, "--to", "127.0.0.1", "--ports", fmt.Sprintf("%d,%d-%d", ctrlPort, pasv.lo, pasv.hi))
	if err != nil {
		return nil, err
	}
	via := net.JoinHostPort(hopHost, ctrl)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := waitForPort(wctx, via, r); err != nil {
		return nil, fmt.Errorf("the hop relay did not start: %s", oneLine(err))
	}
	g, err := startGatewayEnv(ctx, e, "ftpsgate-hop", via, "explicit", agentBlocks[agHop], "", []string{"FTPSGATE_BACKEND_SERVER_NAME=127.0.0.1"})
	if err != nil {
		return nil, fmt.Errorf("gateway did not start: %w", err)
	}
	relayCPU := processCPU(r.pid())
	t.addr, t.cpu, t.side = g.Addr, sumCPU(processCPU(g.proc.pid()), relayCPU), relayCPU
	return func() hopCount {
		b, _ := os.ReadFile(r.logPath)
		var c hopCount
		c.ctrlConns, c.dataConns, c.dataBytes = hopBytes(b, ctrlPort)
		return c
	}, nil
}

// waitRelayed waits (up to 3 s: the relay logs a connection once both its
// directions have ended, a moment after the client is done) until ok holds
// of what the relay has carried, and returns the last count.
func waitRelayed(relayed func() hopCount, ok func(hopCount) bool) (hopCount, bool) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		c := relayed()
		if ok(c) {
			return c, true
		}
		if time.Now().After(deadline) {
			return c, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
