package testredis

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
)

// EnvInterop is the switch that turns the tests with real programs on.
const EnvInterop = "FTPSGATE_INTEROP"

// startTimeout bounds the wait for a new server to answer PING.
const startTimeout = 10 * time.Second

// Options vary the server.
type Options struct {
	// TLS serves TLS only (no plain port) and wants client certificates
	// (tls-auth-clients yes): CAFile, ClientCertFile and ClientKeyFile are
	// set.
	TLS bool
	// User and Password add an ACL user (and turn the default user off);
	// ACL is its rules (default: every key and command).
	User, Password string
	ACL            string
}

// Server is a redis-server for one test.
type Server struct {
	Addr string // 127.0.0.1:PORT, the same across Restart
	Dir  string
	// With Options.TLS: the CA that signed the server's certificate (for
	// 127.0.0.1) and a client certificate and key it accepts.
	CAFile, ClientCertFile, ClientKeyFile string

	o       Options
	tlsConf *tls.Config // for ping
	cluster bool        // a node of StartCluster's
	busPort string      // its cluster bus port (default port+10000 may not exist)

	t    testing.TB
	bin  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the path of redis-server, or "" when it is not installed.
func Binary() string {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Require returns the redis-server binary. Without one it skips t, or fails
// it when the interop switch is on.
func Require(t testing.TB) string {
	t.Helper()
	bin := Binary()
	if bin != "" {
		return bin
	}
	if os.Getenv(EnvInterop) == "1" {
		t.Fatalf("redis-server is not installed: apt-get install redis-server (with %s=1 a missing program is a failure)", EnvInterop)
	}
	t.Skipf("test with a real redis-server: not installed (apt-get install redis-server); with %s=1 this is a failure", EnvInterop)
	return ""
}

// Start runs a redis-server on a free loopback port and stops it when t
// ends. It calls Require.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: Require(t), Dir: t.TempDir(), o: o}
	if o.TLS {
		if err := s.writePKI(); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	_ = ln.Close()
	t.Cleanup(s.Stop)
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	logf, err := os.OpenFile(filepath.Join(s.Dir, "redis.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.Dir, "--protected-mode", "yes", "--daemonize", "no"}
	if s.o.TLS {
		args = append(args, "--port", "0", "--tls-port", port, "--tls-cert-file", filepath.Join(s.Dir, "server.pem"),
			"--tls-key-file", filepath.Join(s.Dir, "server.key"), "--tls-ca-cert-file", s.CAFile, "--tls-auth-clients", "yes")
	} else {
		args = append(args, "--port", port)
	}
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.Dir, "nodes.conf"), "--cluster-port", s.busPort)
	}
	if s.o.User != "" {
		acl := s.o.ACL
		if acl == "" {
			acl = "~* &* +@all"
		}
		args = append(args, "--user", "default", "off", "--user", s.o.User, "on", ">"+s.o.Password)
		args = append(args, strings.Fields(acl)...)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testredis: starting %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if s.ping() == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("testredis: redis-server exited at start; log:\n%s", s.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("testredis: redis-server did not answer within %v; log:\n%s", startTimeout, s.Log())
}

// ping sends PING (after AUTH, over TLS when so configured) in the
// inline protocol and wants +PONG.
func (s *Server) ping() error {
	var c net.Conn
	var err error
	if s.o.TLS {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", s.Addr, s.tlsConf)
	} else {
		c, err = net.DialTimeout("tcp", s.Addr, time.Second)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	r := bufio.NewReader(c)
	if s.o.User != "" {
		if _, err := fmt.Fprintf(c, "AUTH %s %s\r\n", s.o.User, s.o.Password); err != nil {
			return err
		}
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("testredis: AUTH answered %q: %v", line, err)
		}
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("testredis: PING answered %q", line)
	}
	return nil
}

// Stop kills the server (SIGKILL: an outage, not a shutdown) and waits for
// it to exit. It may be called more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Restart starts the server again on the same port, empty (nothing was
// saved). A port taken meanwhile fails t.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// Log returns the server's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	return string(b)
}

// Port is the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// writePKI writes a CA, the server's certificate for 127.0.0.1 and a
// client certificate into Dir.
func (s *Server) writePKI() error {
	ca, err := testpki.NewCA("testredis CA")
	if err != nil {
		return err
	}
	srv, err := ca.Server()
	if err != nil {
		return err
	}
	cl, err := ca.Client("ftpsgate")
	if err != nil {
		return err
	}
	s.CAFile = filepath.Join(s.Dir, "ca.pem")
	s.ClientCertFile, s.ClientKeyFile = filepath.Join(s.Dir, "client.pem"), filepath.Join(s.Dir, "client.key")
	for _, w := range []struct {
		path, typ string
		der       []byte
	}{
		{s.CAFile, "CERTIFICATE", ca.DER}, {filepath.Join(s.Dir, "server.pem"), "CERTIFICATE", srv.DER},
		{filepath.Join(s.Dir, "server.key"), "PRIVATE KEY", srv.KeyDER},
		{s.ClientCertFile, "CERTIFICATE", cl.DER}, {s.ClientKeyFile, "PRIVATE KEY", cl.KeyDER},
	} {
		if err := testpki.WritePEM(w.path, 0o600, w.typ, w.der); err != nil {
			return err
		}
	}
	s.tlsConf = &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cl.TLS}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	return nil
}

// Sentinel is a redis-server in Sentinel mode watching one master.
type Sentinel struct {
	Addr       string // 127.0.0.1:PORT
	MasterName string
}

// StartSentinel runs a Sentinel on a free loopback port that monitors
// master (plain, no ACL user) as "ftpsgate-master", and stops it when t
// ends.
func StartSentinel(t testing.TB, master *Server) *Sentinel {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	_, mport, _ := net.SplitHostPort(master.Addr)
	sn := &Sentinel{Addr: addr, MasterName: "ftpsgate-master"}
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %s 1\nsentinel down-after-milliseconds %s 60000\n",
		port, dir, sn.MasterName, mport, sn.MasterName)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "sentinel.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(master.bin, conf, "--sentinel")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testredis: starting the sentinel: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	probe := &Server{Addr: addr}
	deadline := time.Now().Add(startTimeout)
	for probe.ping() != nil {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "sentinel.log"))
			t.Fatalf("testredis: the sentinel did not answer; log:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return sn
}

// StartCluster runs a Redis Cluster of three masters (no replicas) on free
// loopback ports, the 16384 slots split between them, and returns their
// addresses once the cluster is ok. They stop when t ends.
func StartCluster(t testing.TB) []string {
	t.Helper()
	bin := Require(t)
	var addrs, buses []string
	for range 3 {
		s := &Server{t: t, bin: bin, Dir: t.TempDir(), cluster: true}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		bus, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.Addr = ln.Addr().String()
		_, s.busPort, _ = net.SplitHostPort(bus.Addr().String())
		_ = ln.Close()
		_ = bus.Close()
		t.Cleanup(s.Stop)
		if err := s.start(); err != nil {
			t.Fatal(err)
		}
		addrs, buses = append(addrs, s.Addr), append(buses, s.busPort)
	}
	for i, a := range addrs {
		lo, hi := i*16384/3, (i+1)*16384/3-1
		if _, err := command(a, fmt.Sprintf("CLUSTER ADDSLOTSRANGE %d %d", lo, hi)); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			host, port, _ := net.SplitHostPort(addrs[0])
			if _, err := command(a, "CLUSTER MEET "+host+" "+port+" "+buses[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(startTimeout)
	for _, a := range addrs {
		for {
			info, err := command(a, "CLUSTER INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("testredis: the cluster is not ok: %s %v", info, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return addrs
}

// command sends one inline command and returns its reply (a status, an
// error as an error, or a bulk string).
func command(addr, line string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(line + "\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	first, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	switch {
	case strings.HasPrefix(first, "-"):
		return "", fmt.Errorf("testredis: %s: %s", line, strings.TrimSpace(first[1:]))
	case strings.HasPrefix(first, "$"):
		n, err := strconv.Atoi(strings.TrimSpace(first[1:]))
		if err != nil || n < 0 || n > 1<<20 {
			return "", fmt.Errorf("testredis: %s: bad reply %q", line, first)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return strings.TrimSpace(first), nil
}
