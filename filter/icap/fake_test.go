package icap_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/icap"
)

// A scripted ICAP server for fault injection: each connection runs the
// test's handler. The real protocol is tested against c-icap
// (interop_test.go).

type fakeConn struct {
	net.Conn
	br *bufio.Reader
}

type fakeReq struct {
	Method string
	Header map[string]string
	Body   []byte // the chunks read so far
	IEOF   bool   // the preview ended with ieof
}

// readReq reads a request's line, headers and encapsulated headers, and
// its body up to the first last-chunk (the end of a preview, or of the
// body).
func (c *fakeConn) readReq() (*fakeReq, error) {
	line, err := c.br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	r := &fakeReq{Method: strings.Fields(line)[0], Header: map[string]string{}}
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ":")
		r.Header[strings.ToLower(k)] = strings.TrimSpace(v)
	}
	enc := r.Header["encapsulated"]
	if enc == "" || strings.Contains(enc, "null-body") {
		return r, nil
	}
	// The body's offset is the encapsulated headers' length.
	parts := strings.Split(enc, ",")
	_, off, _ := strings.Cut(parts[len(parts)-1], "=")
	n, _ := strconv.Atoi(off)
	if _, err := io.ReadFull(c.br, make([]byte, n)); err != nil {
		return nil, err
	}
	return r, c.readChunks(r)
}

// readChunks reads chunks up to a last-chunk.
func (c *fakeConn) readChunks(r *fakeReq) error {
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			return err
		}
		l = strings.TrimRight(l, "\r\n")
		sz, ext, _ := strings.Cut(l, ";")
		n, err := strconv.ParseInt(strings.TrimSpace(sz), 16, 64)
		if err != nil {
			return fmt.Errorf("chunk size %q", l)
		}
		if n == 0 {
			r.IEOF = strings.TrimSpace(ext) == "ieof"
			_, err := c.br.ReadString('\n')
			return err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(c.br, b); err != nil {
			return err
		}
		r.Body = append(r.Body, b[:n]...)
	}
}

const optionsReply = "ICAP/1.0 200 OK\r\nMethods: REQMOD, RESPMOD\r\nISTag: \"fake1\"\r\nAllow: 204\r\n%sEncapsulated: null-body=0\r\n\r\n"

// answerOptions reads an OPTIONS and answers it with extra headers.
func (c *fakeConn) answerOptions(extra string) error {
	r, err := c.readReq()
	if err != nil {
		return err
	}
	if r.Method != "OPTIONS" {
		return fmt.Errorf("%s, want OPTIONS", r.Method)
	}
	_, err = fmt.Fprintf(c, optionsReply, extra)
	return err
}

// fakeServer listens on loopback and runs handle on each connection.
func fakeServer(t *testing.T, handle func(c *fakeConn)) icap.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
				handle(&fakeConn{Conn: nc, br: bufio.NewReader(nc)})
			}()
		}
	}()
	return server(t, "icap://"+l.Addr().String()+"/scan")
}

// scanWith runs data through a filter on a client of cfg and returns the
// verdict, the report, and how long it took.
func scanWith(t *testing.T, cfg icap.Config, data []byte) (filter.Verdict, icap.Report, time.Duration) {
	t.Helper()
	c := newClient(t, cfg)
	f := c.NewFilter(meta)
	start := time.Now()
	v, err := feed(t, f, data, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return v, f.Report(), time.Since(start)
}

// A server that hangs (reads, never answers), one that closes in the
// middle of its reply, one that answers garbage, one whose headers never
// end, one whose header line never ends: each a failure with a clear
// error within the timeout; on_error block vetoes 451, allow passes.
func TestFakeFaults(t *testing.T) {
	data := []byte(strings.Repeat("x", 3000))
	cases := []struct {
		name   string
		reply  func(c *fakeConn)
		errIs  error
		errHas string
	}{
		{"hang", func(c *fakeConn) { _, _ = io.Copy(io.Discard, c.br) }, nil, "timeout"},
		{"close mid-reply", func(c *fakeConn) {
			_, _ = io.WriteString(c, "ICAP/1.0 200 OK\r\nISTag: \"x\"\r\nEncaps")
		}, io.ErrUnexpectedEOF, ""},
		{"garbage", func(c *fakeConn) { _, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\n") }, icap.ErrProtocol, "bad status line"},
		{"binary garbage", func(c *fakeConn) { _, _ = c.Write([]byte{0, 1, 2, 0xff, '\n'}) }, icap.ErrProtocol, ""},
		{"endless headers", func(c *fakeConn) {
			_, _ = io.WriteString(c, "ICAP/1.0 204 No Content\r\n")
			for i := 0; i < 100000; i++ {
				if _, err := fmt.Fprintf(c, "X-H%d: %s\r\n", i, strings.Repeat("v", 50)); err != nil {
					return
				}
			}
		}, icap.ErrTooLarge, "headers past"},
		{"endless line", func(c *fakeConn) {
			_, _ = io.WriteString(c, "ICAP/1.0 204 No Content\r\nX-Big: ")
			for i := 0; i < 10000; i++ {
				if _, err := io.WriteString(c, strings.Repeat("v", 1000)); err != nil {
					return
				}
			}
		}, icap.ErrTooLarge, "line longer"},
		{"status 500", func(c *fakeConn) {
			_, _ = io.WriteString(c, "ICAP/1.0 500 Server Error\r\nEncapsulated: null-body=0\r\n\r\n")
		}, icap.ErrProtocol, "status 500"},
		{"bad encapsulated", func(c *fakeConn) {
			_, _ = io.WriteString(c, "ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=99999999\r\n\r\n")
		}, icap.ErrProtocol, "Encapsulated"},
		{"endless body", func(c *fakeConn) {
			_, _ = io.WriteString(c, "ICAP/1.0 200 OK\r\nEncapsulated: res-body=0\r\n\r\n")
			for i := 0; i < 10000; i++ {
				if _, err := fmt.Fprintf(c, "400\r\n%s\r\n", strings.Repeat("b", 1024)); err != nil {
					return
				}
			}
		}, icap.ErrTooLarge, "body past"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeServer(t, func(c *fakeConn) {
				if c.answerOptions("") != nil {
					return
				}
				if _, err := c.readReq(); err != nil {
					return
				}
				tc.reply(c)
			})
			for _, onErr := range []icap.Action{icap.Block, icap.Allow} {
				var errs []error
				var mu sync.Mutex
				cfg := icap.Config{Servers: []icap.Server{srv}, Timeout: 500 * time.Millisecond, OnError: onErr, Preview: icap.PreviewOff,
					Hooks: icap.Hooks{ServerError: func(_ string, err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }}}
				v, rep, took := scanWith(t, cfg, data)
				if took > 5*time.Second {
					t.Errorf("on_error %v: the verdict took %v", onErr, took)
				}
				if rep.Outcome != icap.Failed || rep.Err == nil {
					t.Fatalf("on_error %v: report %+v, want a failure", onErr, rep)
				}
				if tc.errIs != nil && !errors.Is(rep.Err, tc.errIs) {
					t.Errorf("on_error %v: error %v, want %v", onErr, rep.Err, tc.errIs)
				}
				if !strings.Contains(rep.Err.Error(), tc.errHas) {
					t.Errorf("on_error %v: error %q, want it to say %q", onErr, rep.Err, tc.errHas)
				}
				if onErr == icap.Block && (!v.Veto || v.Code != 451 || !strings.Contains(v.Text, "scanner is unavailable")) {
					t.Errorf("on_error block: %+v, want a 451 veto", v)
				}
				if onErr == icap.Allow && v.Veto {
					t.Errorf("on_error allow: %+v, want a pass", v)
				}
				mu.Lock()
				if len(errs) != 1 {
					t.Errorf("on_error %v: %d server errors reported, want 1", onErr, len(errs))
				}
				mu.Unlock()
			}
		})
	}
}

// OPTIONS that hangs or is refused: failover to the next server; with no
// server left, ErrUnavailable.
func TestFakeOptionsFailover(t *testing.T) {
	hang := fakeServer(t, func(c *fakeConn) { _, _ = io.Copy(io.Discard, c.br) })
	refuse := fakeServer(t, func(c *fakeConn) {
		_, _ = c.readReq()
		_, _ = io.WriteString(c, "ICAP/1.0 404 ICAP Service not found\r\nEncapsulated: null-body=0\r\n\r\n")
	})
	var scanned atomic.Int32
	good := fakeServer(t, func(c *fakeConn) {
		if c.answerOptions("") != nil {
			return
		}
		if _, err := c.readReq(); err != nil {
			return
		}
		scanned.Add(1)
		_, _ = io.WriteString(c, "ICAP/1.0 204 No Content\r\nEncapsulated: null-body=0\r\n\r\n")
	})
	var failed []string
	cfg := icap.Config{Servers: []icap.Server{hang, refuse, good}, Timeout: 300 * time.Millisecond,
		Hooks: icap.Hooks{ServerError: func(s string, _ error) { failed = append(failed, s) }}}
	v, rep, _ := scanWith(t, cfg, []byte("hello"))
	if v.Veto || rep.Outcome != icap.Clean || rep.Server != good.URL() || scanned.Load() != 1 {
		t.Fatalf("verdict %+v report %+v", v, rep)
	}
	if len(failed) != 2 || failed[0] != hang.URL() || failed[1] != refuse.URL() {
		t.Fatalf("server errors %v", failed)
	}
	cfg.Servers = cfg.Servers[:2]
	v, rep, _ = scanWith(t, cfg, []byte("hello"))
	if !errors.Is(rep.Err, icap.ErrUnavailable) || !v.Veto || v.Code != 451 {
		t.Fatalf("no server: verdict %+v report %+v", v, rep)
	}
}

// The verdict headers: X-Infection-Found, X-Virus-ID, X-Violations-Found
// (folded), a 403, a blocking HTTP response; a threat name with control
// characters is made printable (it goes into the FTP reply).
func TestFakeVerdicts(t *testing.T) {
	cases := []struct {
		name, reply, threat string
	}{
		{"x-infection-found", "ICAP/1.0 200 OK\r\nX-Infection-Found: Type=0; Resolution=2; Threat=Eicar-Test;\r\nEncapsulated: null-body=0\r\n\r\n", "Eicar-Test"},
		{"x-virus-id", "ICAP/1.0 200 OK\r\nX-Virus-ID: W32.Bad\r\nEncapsulated: null-body=0\r\n\r\n", "W32.Bad"},
		{"x-violations-found", "ICAP/1.0 200 OK\r\nX-Violations-Found: 1\r\n\tfile.bin\r\n\tCard.Number\r\n\t7\r\n\t2\r\nEncapsulated: null-body=0\r\n\r\n", "Card.Number"},
		{"403", "ICAP/1.0 403 Forbidden\r\nEncapsulated: null-body=0\r\n\r\n", "forbidden by the content scanner"},
		{"blocking response", "ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0, res-body=26\r\n\r\nHTTP/1.1 403 Forbidden\r\n\r\n5\r\nnope!\r\n0\r\n\r\n", "blocked by the content scanner (HTTP 403)"},
		{"control characters", "ICAP/1.0 200 OK\r\nX-Virus-ID: Bad\x01Name\x7f\r\nEncapsulated: null-body=0\r\n\r\n", "Bad?Name?"},
		{"body cut", "ICAP/1.0 200 OK\r\nEncapsulated: req-hdr=0, req-body=19\r\n\r\nPUT /x HTTP/1.1\r\n\r\n0\r\n\r\n", "content changed by the content scanner"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeServer(t, func(c *fakeConn) {
				if c.answerOptions("") != nil {
					return
				}
				if _, err := c.readReq(); err != nil {
					return
				}
				_, _ = io.WriteString(c, tc.reply)
			})
			v, rep, _ := scanWith(t, icap.Config{Servers: []icap.Server{srv}, Timeout: 2 * time.Second}, []byte(strings.Repeat("d", 5000)))
			want := "Transfer blocked: " + tc.threat + " (ref " + rep.Ref + ")."
			if !v.Veto || v.Code != 550 || v.Text != want || rep.Outcome != icap.Blocked {
				t.Fatalf("verdict %+v, want 550 %q; report %+v", v, want, rep)
			}
		})
	}
}

// The server judges the preview: a 200 with a threat cuts the transfer at
// the next Write (a veto error), a 204 lets the rest pass without sending
// it; the request carried Preview and ieof as it should.
func TestFakePreviewEarly(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		veto        bool
	}{
		{"204", "ICAP/1.0 204 No Content\r\nEncapsulated: null-body=0\r\n\r\n", false},
		{"infected", "ICAP/1.0 200 OK\r\nX-Virus-ID: Early\r\nEncapsulated: null-body=0\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan *fakeReq, 1)
			srv := fakeServer(t, func(c *fakeConn) {
				if c.answerOptions("Preview: 10\r\n") != nil {
					return
				}
				r, err := c.readReq()
				if err != nil {
					return
				}
				got <- r
				_, _ = io.WriteString(c, tc.reply)
				_, _ = io.Copy(io.Discard, c.br) // nothing more should come
			})
			c := newClient(t, icap.Config{Servers: []icap.Server{srv}, Timeout: 2 * time.Second})
			f := c.NewFilter(meta)
			if err := f.Write([]byte("0123456789abcdef")); err != nil {
				t.Fatal(err)
			}
			r := <-got
			if r.Header["preview"] != "10" || string(r.Body) != "0123456789" || r.IEOF {
				t.Fatalf("request %+v", r)
			}
			// The verdict is there once the scan has read it.
			deadline := time.Now().Add(5 * time.Second)
			for f.Report().Ref == "" && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			err := f.Write([]byte("more"))
			v, vetoed := filter.VetoOf(err)
			if vetoed != tc.veto || (tc.veto && (v.Code != 550 || !strings.Contains(v.Text, "Early"))) {
				t.Fatalf("Write after the verdict: %v", err)
			}
			if !tc.veto {
				fv, err := f.Finish(context.Background())
				if err != nil || fv.Veto {
					t.Fatalf("Finish: %+v %v", fv, err)
				}
			}
			if rep := f.Report(); !rep.Early || rep.Bytes != 10 {
				t.Fatalf("report %+v, want an early verdict on 10 bytes", rep)
			}
		})
	}
}

// A file inside the preview goes whole with ieof.
func TestFakePreviewIEOF(t *testing.T) {
	got := make(chan *fakeReq, 1)
	srv := fakeServer(t, func(c *fakeConn) {
		if c.answerOptions("Preview: 100\r\n") != nil {
			return
		}
		r, err := c.readReq()
		if err != nil {
			return
		}
		got <- r
		_, _ = io.WriteString(c, "ICAP/1.0 204 No Content\r\nEncapsulated: null-body=0\r\n\r\n")
	})
	v, rep, _ := scanWith(t, icap.Config{Servers: []icap.Server{srv}, Timeout: 2 * time.Second}, []byte("short file"))
	r := <-got
	if v.Veto || rep.Outcome != icap.Clean || !r.IEOF || r.Header["preview"] != "10" || string(r.Body) != "short file" {
		t.Fatalf("verdict %+v report %+v request %+v", v, rep, r)
	}
}

// OPTIONS is asked once and cached; connections are reused, at most
// Max-Connections kept; a connection the server closed is not reused.
func TestFakePoolAndOptionsCache(t *testing.T) {
	var conns, options atomic.Int32
	srv := fakeServer(t, func(c *fakeConn) {
		conns.Add(1)
		for {
			r, err := c.readReq()
			if err != nil {
				return
			}
			if r.Method == "OPTIONS" {
				options.Add(1)
				_, _ = fmt.Fprintf(c, optionsReply, "Max-Connections: 1\r\nOptions-TTL: 3600\r\n")
				continue
			}
			_, _ = io.WriteString(c, "ICAP/1.0 204 No Content\r\nEncapsulated: null-body=0\r\n\r\n")
			if r.Header["x-close"] != "" {
				return
			}
		}
	})
	c := newClient(t, icap.Config{Servers: []icap.Server{srv}, Timeout: 2 * time.Second, MaxIdle: 8})
	for i := range 4 {
		if v, err := feed(t, c.NewFilter(meta), []byte("abc"), 2); err != nil || v.Veto {
			t.Fatalf("scan %d: %+v %v", i, v, err)
		}
	}
	if conns.Load() != 1 || options.Load() != 1 || c.Idle(0) != 1 {
		t.Fatalf("%d connections, %d OPTIONS, %d idle; want 1, 1, 1", conns.Load(), options.Load(), c.Idle(0))
	}
	// Two scans at once: two connections, one kept (Max-Connections: 1).
	// (Past the first 32 KiB, which a scan without preview holds before
	// it takes a connection.)
	f1, f2 := c.NewFilter(meta), c.NewFilter(meta)
	big := []byte(strings.Repeat("a", 40000))
	_ = f1.Write(big)
	_ = f2.Write(big)
	deadline := time.Now().Add(5 * time.Second)
	for conns.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, f := range []*icap.Filter{f1, f2} {
		if v, err := f.Finish(context.Background()); err != nil || v.Veto {
			t.Fatalf("%+v %v", v, err)
		}
	}
	if conns.Load() != 2 || c.Idle(0) != 1 {
		t.Fatalf("%d connections, %d idle; want 2, 1", conns.Load(), c.Idle(0))
	}
}

// An idle connection the server closed is dropped and a new one dialled.
func TestFakeStaleConnection(t *testing.T) {
	var conns atomic.Int32
	srv := fakeServer(t, func(c *fakeConn) {
		conns.Add(1)
		for {
			r, err := c.readReq()
			if err != nil {
				return
			}
			if r.Method == "OPTIONS" {
				_, _ = fmt.Fprintf(c, optionsReply, "")
				continue
			}
			_, _ = io.WriteString(c, "ICAP/1.0 204 No Content\r\nEncapsulated: null-body=0\r\n\r\n")
			return // closes after each scan, keep-alive said nothing
		}
	})
	c := newClient(t, icap.Config{Servers: []icap.Server{srv}, Timeout: 2 * time.Second})
	for i := range 3 {
		if v, err := feed(t, c.NewFilter(meta), []byte("abc"), 2); err != nil || v.Veto {
			t.Fatalf("scan %d: %+v %v", i, v, err)
		}
		time.Sleep(50 * time.Millisecond) // the server's close arrives
	}
	if conns.Load() != 3 {
		t.Fatalf("%d connections, want 3", conns.Load())
	}
	// At once, before the close may have arrived: a kept connection that
	// fails is replaced by a fresh one, the scan does not fail.
	for i := range 5 {
		if v, err := feed(t, c.NewFilter(meta), []byte("abc"), 2); err != nil || v.Veto {
			t.Fatalf("quick scan %d: %+v %v", i, v, err)
		}
	}
}

// Past max_size: block vetoes 550 in Write at once; allow passes; the
// bytes past the limit never reach the server.
func TestFakeMaxSize(t *testing.T) {
	var seen atomic.Int64
	srv := fakeServer(t, func(c *fakeConn) {
		if c.answerOptions("") != nil {
			return
		}
		if _, err := c.br.ReadString('\n'); err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, c.br)
		seen.Add(n)
	})
	for _, tc := range []struct {
		over icap.Action
		veto bool
	}{{icap.OnError, true}, {icap.Block, true}, {icap.Allow, false}} {
		reports := make(chan icap.Report, 1)
		cfg := icap.Config{Servers: []icap.Server{srv}, Timeout: 2 * time.Second, MaxSize: 4000, OverMaxSize: tc.over, OnError: icap.Block,
			Hooks: icap.Hooks{Done: func(r icap.Report) { reports <- r }, ServerError: func(s string, err error) { t.Errorf("server error %v", err) }}}
		v, _, _ := scanWith(t, cfg, []byte(strings.Repeat("z", 10000)))
		if v.Veto != tc.veto || (tc.veto && (v.Code != 550 || !strings.Contains(v.Text, "inspection limit of 4000 bytes"))) {
			t.Fatalf("over_max_size %v: %+v", tc.over, v)
		}
		select {
		case r := <-reports:
			if r.Outcome != icap.Skipped || !errors.Is(r.Err, icap.ErrOverMaxSize) || (tc.veto && !strings.Contains(v.Text, "(ref "+r.Ref+")")) {
				t.Fatalf("over_max_size %v: report %+v, verdict %q", tc.over, r, v.Text)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no report")
		}
	}
	if seen.Load() > 3*(4000+1000) {
		t.Fatalf("the server saw %d bytes", seen.Load())
	}
}

// A cut transfer (no Finish): Close ends the scan and its connection.
func TestFakeCloseAbandons(t *testing.T) {
	reading, closed := make(chan struct{}), make(chan struct{})
	srv := fakeServer(t, func(c *fakeConn) {
		if c.answerOptions("") != nil {
			return
		}
		if _, err := c.br.ReadString('\n'); err != nil {
			return
		}
		close(reading)
		_, _ = io.Copy(io.Discard, c.br)
		close(closed)
	})
	c := newClient(t, icap.Config{Servers: []icap.Server{srv}, Timeout: 10 * time.Second, Preview: icap.PreviewOff})
	f := c.NewFilter(meta)
	if err := f.Write([]byte(strings.Repeat("q", 40000))); err != nil {
		t.Fatal(err)
	}
	<-reading
	_ = f.Close()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the scan's connection stayed open after Close")
	}
}

// Directions: Filters gives no filter for a transfer left out.
func TestDirections(t *testing.T) {
	c := newClient(t, icap.Config{Servers: []icap.Server{server(t, "icap://127.0.0.1/x")}, Directions: icap.Uploads})
	down := meta
	down.Direction = filter.Download
	if len(c.Filters(down)) != 0 || len(c.Filters(meta)) != 1 {
		t.Fatal("directions uploads: want a filter for uploads only")
	}
}

// partial_transfers: block refuses an APPE and a resumed transfer at the
// first Write (nothing passes, no scan; an empty one passes: nothing was
// added); scan scans the part.
func TestPartialTransfers(t *testing.T) {
	var scans atomic.Int32
	srv := fakeServer(t, func(c *fakeConn) {
		for {
			r, err := c.readReq()
			if err != nil {
				return
			}
			if r.Method == "OPTIONS" {
				_, _ = fmt.Fprintf(c, optionsReply, "")
				continue
			}
			scans.Add(1)
			_, _ = io.WriteString(c, "ICAP/1.0 204 No Content\r\nEncapsulated: null-body=0\r\n\r\n")
		}
	})
	appe, resumed, rest0 := meta, meta, meta
	appe.Verb = "APPE"
	resumed.Offset = "1000"
	resumed.Direction, resumed.Verb = filter.Download, "RETR"
	rest0.Offset = "0"
	var reports []icap.Report
	c := newClient(t, icap.Config{Servers: []icap.Server{srv}, Timeout: 2 * time.Second,
		Hooks: icap.Hooks{Done: func(r icap.Report) { reports = append(reports, r) }}})
	for _, m := range []filter.Meta{appe, resumed} {
		f := c.NewFilter(m)
		err := f.Write([]byte("data"))
		v, ok := filter.VetoOf(err)
		if !ok || v.Code != 550 || !errors.Is(err, filter.ErrPartialTransfer) || !strings.Contains(v.Text, "resumed or appended") {
			t.Fatalf("%s offset %q: Write %v", m.Verb, m.Offset, err)
		}
		if r := f.Report(); r.Outcome != icap.Blocked || !strings.Contains(v.Text, r.Ref) {
			t.Fatalf("report %+v", r)
		}
		if v, err := c.NewFilter(m).Finish(context.Background()); err != nil || v.Veto {
			t.Fatalf("an empty %s: %+v %v", m.Verb, v, err)
		}
	}
	if scans.Load() != 0 || len(reports) != 2 {
		t.Fatalf("%d scans, %d reports; want 0 and 2", scans.Load(), len(reports))
	}
	if v, err := feed(t, c.NewFilter(rest0), []byte("data"), 2); err != nil || v.Veto || scans.Load() != 1 {
		t.Fatalf("REST 0: %+v %v", v, err)
	}
	c2 := newClient(t, icap.Config{Servers: []icap.Server{srv}, Timeout: 2 * time.Second, Partial: icap.PartialScan})
	if v, err := feed(t, c2.NewFilter(appe), []byte("data"), 2); err != nil || v.Veto || scans.Load() != 2 {
		t.Fatalf("partial_transfers scan: %+v %v, %d scans", v, err, scans.Load())
	}
}

// Over IPv6 loopback, the Host header carries the address in brackets.
func TestFakeIPv6Host(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	hosts := make(chan string, 2)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		c := &fakeConn{Conn: nc, br: bufio.NewReader(nc)}
		for {
			r, err := c.readReq()
			if err != nil {
				return
			}
			hosts <- r.Header["host"]
			if r.Method == "OPTIONS" {
				_, _ = fmt.Fprintf(c, optionsReply, "")
				continue
			}
			_, _ = io.WriteString(c, "ICAP/1.0 204 No Content\r\nEncapsulated: null-body=0\r\n\r\n")
		}
	}()
	t.Cleanup(func() { _ = l.Close() })
	v, _, _ := scanWith(t, icap.Config{Servers: []icap.Server{server(t, "icap://"+l.Addr().String()+"/scan")}, Timeout: 2 * time.Second}, []byte("v6"))
	if v.Veto {
		t.Fatalf("verdict %+v", v)
	}
	for range 2 {
		if h := <-hosts; h != "[::1]" {
			t.Fatalf("Host %q, want [::1]", h)
		}
	}
}

// A kept connection the server drops when the next request comes (no
// reply at all): the scan goes again on a fresh connection, preview or
// not, and passes; a reply cut in the middle is not retried.
func TestFakeDroppedKeptConnection(t *testing.T) {
	for _, preview := range []string{"", "Preview: 4\r\n"} {
		var conns atomic.Int32
		srv := fakeServer(t, func(c *fakeConn) {
			first := conns.Add(1) == 1
			for {
				r, err := c.readReq()
				if err != nil {
					return
				}
				if r.Method == "OPTIONS" {
					_, _ = fmt.Fprintf(c, optionsReply, preview)
					continue
				}
				if first {
					return // dropped, not a byte of reply
				}
				if !r.IEOF && preview != "" {
					_, _ = io.WriteString(c, "ICAP/1.0 100 Continue\r\n\r\n")
					if err := c.readChunks(r); err != nil {
						return
					}
				}
				_, _ = io.WriteString(c, "ICAP/1.0 204 No Content\r\nEncapsulated: null-body=0\r\n\r\n")
			}
		})
		v, rep, _ := scanWith(t, icap.Config{Servers: []icap.Server{srv}, Timeout: 2 * time.Second}, []byte("0123456789"))
		if v.Veto || rep.Outcome != icap.Clean || conns.Load() != 2 {
			t.Fatalf("preview %q: verdict %+v report %+v, %d connections", preview, v, rep, conns.Load())
		}
	}
}
