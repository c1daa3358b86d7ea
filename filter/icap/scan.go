package icap

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
)

// ErrOverMaxSize: the transfer passed Config.MaxSize; it was not scanned
// to its end.
var ErrOverMaxSize = errors.New("icap: transfer larger than max_size")

// Outcome is a scan's judgement.
type Outcome int

// The outcomes.
const (
	Clean   Outcome = iota // 204, or 200 without a threat or a block
	Blocked                // a threat named, a 403, or a blocking HTTP reply
	Failed                 // no verdict: the scanner failed or was unreachable (Report.Err)
	Skipped                // no verdict: the transfer passed max_size
)

func (o Outcome) String() string {
	switch o {
	case Clean:
		return "clean"
	case Blocked:
		return "blocked"
	case Failed:
		return "failed"
	case Skipped:
		return "skipped"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Report is one scan's result, for the verdict, logs and metrics.
type Report struct {
	Ref       string // a random reference, in the FTP reply of a block
	Session   string // the transfer's session id (filter.Meta)
	User      string // its login name
	Verb      string // RETR, STOR, STOU or APPE
	Offset    string // the REST offset: only the part from there was scanned
	Server    string // the ICAP service used, "" if none
	Method    string // REQMOD (upload) or RESPMOD (download)
	Direction filter.Direction
	Path      string
	Outcome   Outcome
	Threat    string // the threat or violation the server named (printable ASCII)
	Status    int    // the ICAP status, 0 without a reply
	ISTag     string
	Preview   int   // preview bytes sent, -1 for none
	Bytes     int64 // body bytes sent to the server
	// Early: the server gave its verdict on the preview (or before the
	// end of the body): the rest of the transfer was not sent to it.
	Early bool
	// Modified: a 200 that allowed a modified message, which the gateway
	// cannot apply to an FTP transfer: the original passes.
	Modified bool
	// Latency is the wait after the last byte for the verdict.
	Latency  time.Duration
	Duration time.Duration // the whole scan
	Err      error
}

// scan sends meta's transfer, read from src, to the first server that
// works. src is read until EOF, an error, a verdict or max_size.
func (c *Client) scan(ctx context.Context, meta filter.Meta, src io.Reader, ref string) Report {
	start := time.Now()
	r := Report{Ref: ref, Session: meta.Session, User: meta.User, Verb: meta.Verb, Offset: meta.Offset,
		Method: "RESPMOD", Direction: meta.Direction, Path: meta.Path, Preview: -1}
	if meta.Direction == filter.Upload {
		r.Method = "REQMOD"
	}
	c.scanOn(ctx, meta, src, &r)
	r.Duration = time.Since(start)
	if r.Err != nil && r.Outcome == Clean {
		r.Outcome = Failed
	}
	if c.cfg.Hooks.Done != nil {
		c.cfg.Hooks.Done(r)
	}
	return r
}

func (c *Client) scanOn(ctx context.Context, meta filter.Meta, src io.Reader, r *Report) {
	var (
		held   []byte // the preview, or the first buffer: kept for failover
		eof    bool
		readIn bool
		lastEr error
	)
	for _, s := range c.order() {
		if c.abandoned(ctx, r) {
			return
		}
		opts, err := c.options(ctx, s)
		if err == nil && !opts.Supports(r.Method) {
			err = fmt.Errorf("%w: the service does not offer %s", ErrProtocol, r.Method)
		}
		if err != nil {
			if c.abandoned(ctx, r) {
				return
			}
			lastEr = err
			c.markDown(s, err)
			continue
		}
		preview := c.previewSize(opts)
		if !readIn {
			// What is held before the first request: the preview, or the
			// first bytes, so that a failing server can hand over.
			n := preview
			if n < 0 {
				n = 32 << 10
			}
			held = make([]byte, n)
			m, rerr := io.ReadFull(src, held)
			held = held[:m]
			switch {
			case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
				eof = true
			case rerr != nil:
				r.Err = fmt.Errorf("reading the transfer: %w", rerr)
				if errors.Is(rerr, ErrOverMaxSize) {
					r.Outcome = Skipped
				}
				return
			}
			readIn = true
		}
		if preview > len(held) {
			preview = len(held)
		}
		if int64(len(held)) > c.cfg.maxSize() {
			r.Outcome, r.Err = Skipped, ErrOverMaxSize
			return
		}
		cn, err := c.get(ctx, s)
		if err != nil {
			if c.abandoned(ctx, r) {
				return
			}
			lastEr = err
			c.markDown(s, err)
			continue
		}
		r.Server, r.ISTag = s.URL(), opts.ISTag
		done, retry, err := c.attempt(ctx, cn, s, opts, meta, src, held, preview, eof, r)
		if err != nil && retry && cn.reused && errors.Is(err, errDropped) && ctx.Err() == nil {
			// A kept connection the server dropped meanwhile: once more on
			// a fresh one before the server counts as failed.
			first := err
			if cn, err = c.dial(ctx, s); err == nil {
				done, retry, err = c.attempt(ctx, cn, s, opts, meta, src, held, preview, eof, r)
			}
			if err != nil {
				err = fmt.Errorf("%w (on a fresh connection: %v)", first, err)
			}
		}
		if err != nil && retry && ctx.Err() == nil {
			lastEr = err
			c.markDown(s, err)
			r.Server, r.Bytes = "", 0
			continue
		}
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
				err = fmt.Errorf("%w (%w)", cause, err)
			}
			r.Err = fmt.Errorf("%s: %w", s.URL(), err)
			switch {
			case errors.Is(err, ErrOverMaxSize):
				r.Outcome, r.Err = Skipped, err
			case ctx.Err() != nil:
				// Abandoned by the transfer: not the server's fault.
			default:
				c.markDown(s, err) // the next scans try the others first
			}
			return
		}
		if done {
			c.put(s, cn, opts)
		} else {
			_ = cn.nc.Close()
		}
		return
	}
	if lastEr == nil {
		lastEr = errors.New("no server configured")
	}
	r.Err = fmt.Errorf("%w: %w", ErrUnavailable, lastEr)
}

// errDropped: the connection ended (or was reset) before any byte of a
// reply: a kept connection the server closed meanwhile looks so.
var errDropped = errors.New("connection dropped")

// dropped marks err as errDropped when it is an end of the connection
// before a reply began; other errors (a reply cut in the middle, a
// timeout, garbage) stay as they are.
func dropped(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%w: %w", errDropped, unexpected(err))
	}
	return unexpected(err)
}

// abandoned reports whether the transfer gave up the scan (ctx), and then
// records why in r: not a server's failure.
func (c *Client) abandoned(ctx context.Context, r *Report) bool {
	if ctx.Err() == nil {
		return false
	}
	r.Err = context.Cause(ctx)
	if errors.Is(r.Err, ErrOverMaxSize) {
		r.Outcome = Skipped
	}
	return true
}

// attempt runs request on cn; a connection that cannot be kept is closed.
// An abandoned scan (ctx) closes cn at once: no read or write waits on.
func (c *Client) attempt(ctx context.Context, cn *conn, s *server, opts *Options, meta filter.Meta, src io.Reader, held []byte, preview int, eof bool, r *Report) (keep, retry bool, err error) {
	stop := context.AfterFunc(ctx, func() { _ = cn.nc.Close() })
	keep, retry, err = c.request(cn, s, opts, meta, src, held, preview, eof, r)
	if !stop() {
		keep = false // closed under it
	}
	if err != nil || !keep {
		_ = cn.nc.Close()
	}
	return keep, retry, err
}

// previewSize is the preview to send: -1 for none.
func (c *Client) previewSize(o *Options) int {
	switch {
	case c.cfg.Preview == PreviewOff || o.Preview < 0:
		return -1
	case c.cfg.Preview == PreviewAuto:
		return o.Preview
	}
	return min(c.cfg.Preview, o.Preview)
}

// request sends one REQMOD or RESPMOD on cn and reads its verdict into r.
// held are the bytes read so far (the first preview of them go as the
// preview), eof whether src ended there. keep: cn can go back to the pool;
// retry: the failure came before any byte past held was read from src
// (another server can take the transfer).
func (c *Client) request(cn *conn, s *server, opts *Options, meta filter.Meta, src io.Reader, held []byte, preview int, eof bool, r *Report) (keep, retry bool, err error) {
	host := s.host()
	u := (&url.URL{Scheme: "ftp", Host: "ftpsgate", Path: "/" + strings.TrimPrefix(meta.Path, "/")}).String()
	var hdr strings.Builder
	var encap string
	if r.Method == "REQMOD" {
		req := fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: ftpsgate\r\n\r\n", u)
		encap = fmt.Sprintf("req-hdr=0, req-body=%d", len(req))
		hdr.WriteString(req)
	} else {
		req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: ftpsgate\r\n\r\n", u)
		res := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"
		encap = fmt.Sprintf("req-hdr=0, res-hdr=%d, res-body=%d", len(req), len(req)+len(res))
		hdr.WriteString(req)
		hdr.WriteString(res)
	}
	w := cn.bw
	fmt.Fprintf(w, "%s %s ICAP/1.0\r\nHost: %s\r\nUser-Agent: ftpsgate\r\nAllow: 204\r\n", r.Method, s.URL(), host)
	if meta.User != "" {
		fmt.Fprintf(w, "X-Authenticated-User: %s\r\n", base64.StdEncoding.EncodeToString([]byte("ftp://"+meta.User)))
	}
	if preview >= 0 {
		fmt.Fprintf(w, "Preview: %d\r\n", preview)
	}
	fmt.Fprintf(w, "Encapsulated: %s\r\n\r\n%s", encap, hdr.String())
	r.Preview = preview
	sent := 0 // bytes of held sent
	if preview >= 0 {
		writeChunk(w, held[:preview])
		sent = preview
		r.Bytes = int64(preview)
		if eof && preview == len(held) {
			w.WriteString("0; ieof\r\n\r\n")
		} else {
			w.WriteString("0\r\n\r\n")
		}
		if err := w.Flush(); err != nil {
			return false, true, fmt.Errorf("sending the preview: %w", dropped(err))
		}
		resp, err := readResponse(cn.br)
		if err != nil {
			return false, true, fmt.Errorf("reading the preview reply: %w", dropped(err))
		}
		if resp.Status != 100 {
			if !(eof && preview == len(held)) {
				r.Early = true
			}
			keep, err := c.verdict(cn, resp, r)
			return keep, false, err
		}
		if eof && preview == len(held) {
			return false, false, fmt.Errorf("%w: 100 Continue after ieof", ErrProtocol)
		}
		if len(resp.Encap) > 0 {
			if _, err := readEncapsulated(cn.br, resp, maxBodyBytes); err != nil {
				return false, false, err
			}
		}
	}
	// The rest of held, then src to its end.
	if sent < len(held) {
		writeChunk(w, held[sent:])
		r.Bytes += int64(len(held) - sent)
	}
	more := false // bytes past held were read: another try cannot resend them
	if !eof {
		buf := make([]byte, 32<<10)
		for {
			n, rerr := src.Read(buf)
			if n > 0 {
				more = true
				if r.Bytes+int64(n) > c.cfg.maxSize() {
					return false, false, ErrOverMaxSize
				}
				writeChunk(w, buf[:n])
				r.Bytes += int64(n)
				if w.Buffered() == 0 || w.Available() < 1024 {
					if err := w.Flush(); err != nil {
						return false, !more, fmt.Errorf("sending the body: %w", err)
					}
				}
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return false, false, fmt.Errorf("reading the transfer: %w", rerr)
			}
		}
	}
	w.WriteString("0\r\n\r\n")
	if err := w.Flush(); err != nil {
		return false, !more, fmt.Errorf("sending the body: %w", dropped(err))
	}
	t := time.Now()
	resp, err := readResponse(cn.br)
	r.Latency = time.Since(t)
	if err != nil {
		// Nothing but held sent: a dropped kept connection, or a server
		// that failed, can hand the whole transfer to a fresh one.
		return false, !more, fmt.Errorf("reading the reply: %w", dropped(err))
	}
	if resp.Status == 100 {
		return false, false, fmt.Errorf("%w: 100 Continue outside a preview", ErrProtocol)
	}
	keep, err = c.verdict(cn, resp, r)
	return keep, false, err
}

func writeChunk(w interface {
	io.Writer
	io.StringWriter
}, p []byte) {
	if len(p) == 0 {
		return
	}
	fmt.Fprintf(w, "%x\r\n", len(p))
	_, _ = w.Write(p)
	_, _ = w.WriteString("\r\n")
}

// verdict reads a final reply's encapsulated message and judges it.
func (c *Client) verdict(cn *conn, resp *response, r *Report) (keep bool, err error) {
	r.Status = resp.Status
	if tag := resp.Header.Get("Istag"); tag != "" {
		r.ISTag = printable(tag, 64)
	}
	e, err := readEncapsulated(cn.br, resp, r.Bytes+maxBodyBytes)
	if err != nil {
		return false, fmt.Errorf("reading the reply (%d): %w", resp.Status, err)
	}
	keep = !strings.EqualFold(resp.Header.Get("Connection"), "close")
	th := printable(threat(resp.Header), 120)
	switch {
	case resp.Status == 204:
		if th != "" {
			r.Outcome, r.Threat = Blocked, th
		}
		return keep, nil
	case resp.Status == 200:
		switch {
		case th != "":
			r.Outcome, r.Threat = Blocked, th
		case e.ResHdr != "" && (r.Method == "REQMOD" || e.HTTPStatus >= 400):
			// REQMOD answered with an HTTP response, or a response
			// replaced by an error page: the scanner blocks.
			r.Outcome, r.Threat = Blocked, fmt.Sprintf("blocked by the content scanner (HTTP %d)", e.HTTPStatus)
		case e.BodyBytes != r.Bytes:
			// A body cut or changed: c-icap's virus_scan, outside its
			// simple mode, answers so when it found a threat after it
			// began to send (its headers gone without X-Infection-Found).
			r.Outcome, r.Threat = Blocked, "content changed by the content scanner"
			r.Modified = true
		default:
			r.Modified = true
		}
		return keep, nil
	case resp.Status == 403:
		r.Outcome, r.Threat = Blocked, th
		if r.Threat == "" {
			r.Threat = "forbidden by the content scanner"
		}
		return keep, nil
	}
	return false, fmt.Errorf("%w: status %d %s", ErrProtocol, resp.Status, printable(resp.Reason, 80))
}

func newRef() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
