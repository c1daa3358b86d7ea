package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// phaseIdle holds n logged-in TLS sessions (AUTH TLS, USER, PASS, PBSZ 0,
// PROT P, then nothing) per target and reads the memory of the serving
// processes before and after: the growth divided by n. With a stub count in
// the plan, the gateway (FTPS->plain) is also measured with that many
// sessions in front of an in-process stub backend: vsftpd forks two
// processes per logged-in session, and 10,000 sessions would be 20,000
// processes, too many for this machine beside everything else.
func phaseIdle(ctx context.Context, e *env, targets []*target) {
	// The gateway alone at the large count first: it is quick, and it is
	// the figure the target names.
	if e.idleStub > 0 {
		idleStubPhase(ctx, e, targets)
	}
	for _, n := range e.idleCounts {
		id := fmt.Sprintf("idle/%d", n)
		for _, t := range targets {
			if t.na != "" {
				e.res.na(id, t.key, t.na)
				continue
			}
			if ctx.Err() != nil {
				return
			}
			per, note, err := idleMemory(ctx, e, t.addr, t.mem, n, nil)
			if err != nil {
				e.res.na(id, t.key, fmt.Sprintf("%d idle sessions via %s: %s", n, targetTitle[t.key], oneLine(err)))
				continue
			}
			e.res.set(id, t.key, per/1024, joinNotes(memNote(t), note))
		}
	}
}

func idleStubPhase(ctx context.Context, e *env, targets []*target) {
	for _, t := range targets {
		switch t.key {
		case tGwPlain:
		case tGwTLS:
			e.res.na("idle/stub", t.key, "the stub backend speaks plain FTP: measured FTPS→plain only")
		default:
			e.res.na("idle/stub", t.key, fmt.Sprintf("not run at %d: a process per session (vsftpd forks two per logged-in session, proftpd one more), too many processes for this machine; see the %d row", e.idleStub, e.idleCounts[len(e.idleCounts)-1]))
		}
	}
	per, note, err := idleStub(ctx, e)
	if err != nil {
		e.res.na("idle/stub", tGwPlain, fmt.Sprintf("%d idle sessions with the stub backend: %s", e.idleStub, oneLine(err)))
		return
	}
	e.res.set("idle/stub", tGwPlain, per/1024, joinNotes(memNote(&target{key: tGwPlain}), note, e.idleStubNote,
		"the backend is an in-process stub FTP server (220, 331, 230, 221): only the gateway's memory is measured, its backend side is plain TCP as with vsftpd"))
}

func memNote(t *target) string {
	switch t.key {
	case tGwPlain, tGwTLS:
		return "gateway: growth of the process's RSS (VmRSS) ÷ sessions (the Go heap by allocation site: --profile)"
	case tDirect:
		return "vsftpd: growth of the PSS summed over its processes (two per logged-in session) ÷ sessions"
	default:
		return "mod_proxy: growth of the PSS summed over proftpd's processes (one per session) ÷ sessions"
	}
}

func joinNotes(notes ...string) string {
	var out []string
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}

// idleMemory opens n sessions on addr, measures, and closes them. It
// returns bytes per session and a note if some sessions failed. during, if
// not nil, runs after the measurement while the sessions are still open.
func idleMemory(ctx context.Context, e *env, addr string, mem memMeter, n int, during func() error) (float64, string, error) {
	time.Sleep(e.pause)
	m0, err := mem()
	if err != nil {
		return 0, "", err
	}
	limit := 2*time.Minute + time.Duration(n)*10*time.Millisecond
	conns, failed, lastErr := openIdle(ctx, e, addr, n, limit)
	defer closeAll(conns, e.pause)
	if len(conns) == 0 {
		return 0, "", fmt.Errorf("no session opened (%d failed): %v", failed, lastErr)
	}
	// Let forked processes finish their start and the gateway settle.
	time.Sleep(e.pause)
	m1, err := mem()
	if err != nil {
		return 0, "", err
	}
	note := ""
	if failed > 0 {
		note = fmt.Sprintf("%d of %d sessions failed to open (%v); divided by the %d open", failed, n, lastErr, len(conns))
	}
	if during != nil {
		if err := during(); err != nil {
			return 0, "", err
		}
	}
	per := float64(m1-m0) / float64(len(conns))
	logf("idle %-6d %s: %d open, %.1f KiB/session (%.1f -> %.1f MiB)", n, addr, len(conns), per/1024, float64(m0)/(1<<20), float64(m1)/(1<<20))
	return per, note, nil
}

// openIdle opens up to n logged-in sessions, e.openParallel at a time.
func openIdle(ctx context.Context, e *env, addr string, n int, limit time.Duration) (conns []*ftpsConn, failed int, lastErr error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var (
		mu    sync.Mutex
		next  atomic.Int64
		nfail atomic.Int64
		wg    sync.WaitGroup
	)
	for range e.openParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				c, err := dialFTPS(ctx, addr, e.clientTLS)
				if err == nil {
					if err = c.login(e.acct); err != nil {
						c.close()
					}
				}
				if err != nil {
					nfail.Add(1)
					mu.Lock()
					lastErr = err
					mu.Unlock()
					continue
				}
				_ = c.raw.SetDeadline(time.Time{}) // idle from now on
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil && len(conns)+int(nfail.Load()) < n {
		lastErr = fmt.Errorf("opening %d sessions took longer than %s: %w", n, limit, err)
		nfail.Add(int64(n - len(conns) - int(nfail.Load())))
	}
	return conns, int(nfail.Load()), lastErr
}

// closeAll closes the sessions and gives the servers a moment to end them.
func closeAll(conns []*ftpsConn, pause time.Duration) {
	for _, c := range conns {
		c.close()
	}
	if len(conns) > 0 {
		time.Sleep(pause)
	}
}

// idleStub runs a gateway in front of the stub backend and measures its
// memory with e.idleStub sessions.
func idleStub(ctx context.Context, e *env) (float64, string, error) {
	stub, err := startStub()
	if err != nil {
		return 0, "", err
	}
	defer stub.Close()
	g, err := startGateway(ctx, e, "ftpsgate-stub", stub.Addr().String(), "none", portBlock{62950, 62999})
	if err != nil {
		return 0, "", err
	}
	defer g.proc.stop()
	// Warm up: the first sessions allocate what every session shares.
	conns, _, _ := openIdle(ctx, e, g.Addr, 16, time.Minute)
	closeAll(conns, e.pause)
	return idleMemory(ctx, e, g.Addr, rssOf(g.proc.pid()), e.idleStub, nil)
}

// startStub starts a plain FTP server that knows USER, PASS, QUIT and
// little else: enough for idle logged-in sessions behind the gateway.
func startStub() (net.Listener, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveStub(c)
		}
	}()
	return ln, nil
}

func serveStub(c net.Conn) {
	defer c.Close()
	w := bufio.NewWriter(c)
	r := bufio.NewReader(c)
	say := func(s string) bool {
		w.WriteString(s + "\r\n")
		return w.Flush() == nil
	}
	if !say("220 stub backend") {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		var ok bool
		switch strings.ToUpper(verb) {
		case "USER":
			ok = say("331 password please")
		case "PASS":
			ok = say("230 logged in")
		case "QUIT":
			say("221 bye")
			return
		case "FEAT":
			ok = say("211-Features:\r\n UTF8\r\n211 End")
		case "TYPE", "OPTS", "NOOP", "PBSZ", "PROT":
			ok = say("200 ok")
		default:
			ok = say("502 not implemented by the stub")
		}
		if !ok {
			return
		}
	}
}
