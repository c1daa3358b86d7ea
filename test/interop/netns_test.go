package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// connectIP is the address to connect to for a listen address: loopback
// for the wildcard.
func connectIP(listen string) string {
	if listen == "0.0.0.0" || listen == "" {
		return "127.0.0.1"
	}
	return listen
}

// inNetns prefixes argv with "ip netns exec NS" (nothing when ns is "").
func inNetns(ns string, argv ...string) []string {
	if ns == "" {
		return argv
	}
	return append([]string{"ip", "netns", "exec", ns}, argv...)
}

// nsRun runs argv in namespace ns and returns its combined output.
func nsRun(ctx context.Context, ns string, argv ...string) (string, error) {
	a := inNetns(ns, argv...)
	cmd := exec.CommandContext(ctx, a[0], a[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.String(), err
}

// tcpConnects says whether a TCP connection from namespace ns to addr
// ("ip:port") opens within d (bash's /dev/tcp: no other tool needed).
func tcpConnects(ctx context.Context, ns, addr string, d time.Duration) bool {
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(ctx, d+2*time.Second)
	defer cancel()
	_, err := nsRun(ctx, ns, "timeout", fmt.Sprint(int(d.Seconds())), "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", host, port))
	return err == nil
}

// waitForPortIn is waitForPort inside namespace ns.
func waitForPortIn(ctx context.Context, t *testing.T, ns, addr string, p *process) {
	t.Helper()
	for !tcpConnects(ctx, ns, addr, time.Second) {
		if p.Exited() {
			t.Fatalf("%s exited before %s accepted connections in %s (%v)\n%s", p.Name, addr, ns, p.Err(), p.LogTail())
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %s did not accept connections in %s\n%s", p.Name, addr, ns, p.LogTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// requireNetns fails t (never skips: the interop switch is on) unless the
// test runs as root with a working `ip netns`.
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("%s=1 and not root: the namespace test needs root (ip netns, nft)", envInterop)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("%s=1 and no ip command (Debian package iproute2): %v", envInterop, err)
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		t.Fatalf("%s=1 and ip netns unavailable: %v: %s", envInterop, err, out)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatalf("%s=1 and no nft command (Debian package nftables): %v", envInterop, err)
	}
}

// netPair is two namespaces joined by a veth pair: A has ipA, B has ipB
// (a /24). Both are deleted when the test ends.
type netPair struct {
	A, B     string
	IPA, IPB string
}

func newNetPair(t *testing.T, nameA, nameB string) netPair {
	t.Helper()
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	p := netPair{A: "fg-" + nameA + "-" + id, B: "fg-" + nameB + "-" + id, IPA: "10.99.0.1", IPB: "10.99.0.2"}
	vA, vB := "fga"+id, "fgb"+id
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", p.A)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", p.A).Run() })
	ip("netns", "add", p.B)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", p.B).Run() })
	ip("link", "add", vA, "type", "veth", "peer", "name", vB)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", vA).Run() }) // gone with the namespace, unless a step failed first
	ip("link", "set", vA, "netns", p.A)
	ip("link", "set", vB, "netns", p.B)
	ip("-n", p.A, "addr", "add", p.IPA+"/24", "dev", vA)
	ip("-n", p.B, "addr", "add", p.IPB+"/24", "dev", vB)
	for _, ns := range []string{p.A, p.B} {
		ip("-n", ns, "link", "set", "lo", "up")
	}
	ip("-n", p.A, "link", "set", vA, "up")
	ip("-n", p.B, "link", "set", vB, "up")
	return p
}
