package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// The hop relay: `bench hop-relay --listen HOST --to HOST --ports P,LO-HI`,
// the bench re-executing itself (a hidden mode, before the flags are
// parsed). It listens on HOST at each port and forwards every connection
// to the same port on --to: plain TCP, no TLS and no multiplexing, one
// goroutine per direction copying through a 1 MiB buffer with read() and
// write() (as the agent copies in user space; no splice), half-closing on
// EOF. It is the agent phase's "hop" column: the floor of any process in
// the agent's place. When both directions of a connection have ended it
// prints one line, "hop-relay: conn PORT UP DOWN" (bytes from the client
// to the target and back), which hopBytes sums.

// hopRelayCmd is the hidden subcommand's name.
const hopRelayCmd = "hop-relay"

// hopBuf is the relay's copy buffer: the agent's (tunnel's) 1 MiB. The
// buffers come from a pool, as the agent's do: every session opens two
// connections, and two fresh 1 MiB buffers each would be most of what the
// relay spends on a session.
const hopBuf = 1 << 20

var hopBufs = sync.Pool{New: func() any { b := make([]byte, hopBuf); return &b }}

// hopRelayMain runs the relay until killed; it returns an exit code when
// it cannot start.
func hopRelayMain(args []string) int {
	fs := flag.NewFlagSet(hopRelayCmd, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.2", "address to listen on")
	to := fs.String("to", "127.0.0.1", "address to forward to, at the same port")
	ports := fs.String("ports", "", "ports: comma-separated, each N or LO-HI")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	list, err := parsePorts(*ports)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hop-relay:", err)
		return 2
	}
	out := &lineWriter{w: bufio.NewWriter(os.Stdout)}
	var lns []net.Listener
	for _, p := range list {
		ln, err := net.Listen("tcp4", net.JoinHostPort(*listen, strconv.Itoa(p)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "hop-relay:", err)
			return 1
		}
		lns = append(lns, ln)
	}
	out.printf("hop-relay: listening on %s, %d ports", *listen, len(lns))
	var wg sync.WaitGroup
	for i, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveHop(ln, net.JoinHostPort(*to, strconv.Itoa(list[i])), list[i], out)
		}()
	}
	wg.Wait()
	return 1
}

// parsePorts reads "21,100-102" as [21 100 101 102].
func parsePorts(s string) ([]int, error) {
	var ps []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("port %q: %w", part, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("port %q: %w", part, err)
			}
		}
		if a < 1 || b > 65535 || a > b {
			return nil, fmt.Errorf("port %q: out of range", part)
		}
		for p := a; p <= b; p++ {
			ps = append(ps, p)
		}
	}
	return ps, nil
}

// lineWriter prints whole lines from many goroutines, flushed at once.
type lineWriter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
	l.w.Flush()
}

func serveHop(ln net.Listener, to string, port int, out *lineWriter) {
	for {
		c, err := ln.Accept()
		if err != nil {
			out.printf("hop-relay: accept on %d: %v", port, err)
			return
		}
		go func() {
			defer c.Close()
			d, err := net.Dial("tcp4", to)
			if err != nil {
				out.printf("hop-relay: dial %s: %v", to, err)
				return
			}
			defer d.Close()
			var up, down int64
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); up = copyHalf(d.(*net.TCPConn), c.(*net.TCPConn)) }()
			go func() { defer wg.Done(); down = copyHalf(c.(*net.TCPConn), d.(*net.TCPConn)) }()
			wg.Wait()
			out.printf("hop-relay: conn %d %d %d", port, up, down)
		}()
	}
}

// plainReader and plainWriter hide the TCP connection's ReadFrom and
// WriteTo, so that io.CopyBuffer copies through its buffer with read()
// and write() instead of splice(2).
type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

type plainWriter struct{ w io.Writer }

func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }

// copyHalf copies src to dst until src's EOF (then half-closes dst) or an
// error (then closes both, so that the other direction ends too).
func copyHalf(dst, src *net.TCPConn) int64 {
	buf := hopBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(plainWriter{dst}, plainReader{src}, *buf)
	hopBufs.Put(buf)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		dst.Close()
		src.Close()
		return n
	}
	_ = dst.CloseWrite()
	return n
}

// hopBytes sums the relay's log lines: connections and bytes (both
// directions) through ctrl and through every other port.
func hopBytes(log []byte, ctrl int) (ctrlConns, dataConns int, dataBytes int64) {
	for _, l := range strings.Split(string(log), "\n") {
		f := strings.Fields(l)
		if len(f) != 5 || f[0] != "hop-relay:" || f[1] != "conn" {
			continue
		}
		port, err1 := strconv.Atoi(f[2])
		up, err2 := strconv.ParseInt(f[3], 10, 64)
		down, err3 := strconv.ParseInt(f[4], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		if port == ctrl {
			ctrlConns++
			continue
		}
		dataConns++
		dataBytes += up + down
	}
	return ctrlConns, dataConns, dataBytes
}
