package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// ftpsConn is the bench's own explicit-FTPS client: AUTH TLS, then exactly
// the commands a measurement names and nothing else (no FEAT, TYPE or OPTS
// probing as full clients do), so that every target gets the same round
// trips. Data connections are TLS (PROT P) and resume the control
// connection's TLS session, which vsftpd (require_ssl_reuse) and mod_tls
// demand.
type ftpsConn struct {
	raw  net.Conn
	conn *tls.Conn
	r    *ftp.Reader
	conf *tls.Config // this session's: its own session cache
	host string
}

// dialFTPS connects, reads the greeting, and secures the control connection.
// Every I/O of the session is bounded by ctx's deadline (or 2 minutes).
func dialFTPS(ctx context.Context, addr string, base *tls.Config) (*ftpsConn, error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	raw, err := d.DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(2 * time.Minute)
	}
	_ = raw.SetDeadline(deadline)
	c := &ftpsConn{raw: raw, r: ftp.NewReader(raw)}
	c.host, _, _ = net.SplitHostPort(addr)
	if _, err := c.expect(ftp.StatusReady); err != nil {
		raw.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if _, err := c.cmd(ftp.StatusAuthOK, "AUTH", "TLS"); err != nil {
		raw.Close()
		return nil, err
	}
	c.conf = base.Clone()
	c.conf.ClientSessionCache = tls.NewLRUClientSessionCache(2)
	c.conn = tls.Client(raw, c.conf)
	if err := c.conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("control TLS handshake: %w", err)
	}
	c.r = ftp.NewReader(c.conn)
	return c, nil
}

// login sends USER, PASS, PBSZ 0 and PROT P.
func (c *ftpsConn) login(a account) error {
	rep, err := c.cmd(0, "USER", a.Name)
	if err != nil {
		return err
	}
	switch rep.Code {
	case ftp.StatusLoggedIn:
	case ftp.StatusUserOK:
		if _, err := c.cmd(ftp.StatusLoggedIn, "PASS", a.Password); err != nil {
			return err
		}
	default:
		return fmt.Errorf("USER: %s", rep)
	}
	if _, err := c.cmd(ftp.StatusCommandOK, "PBSZ", "0"); err != nil {
		return err
	}
	_, err = c.cmd(ftp.StatusCommandOK, "PROT", "P")
	return err
}

// cmd sends a command and reads its reply; want 0 accepts any code.
func (c *ftpsConn) cmd(want int, verb, arg string) (ftp.Reply, error) {
	w := io.Writer(c.raw)
	if c.conn != nil {
		w = c.conn
	}
	if err := ftp.WriteCommand(w, ftp.Command{Verb: verb, Arg: arg}); err != nil {
		return ftp.Reply{}, fmt.Errorf("%s: %w", verb, err)
	}
	rep, err := c.expect(want)
	if err != nil {
		return rep, fmt.Errorf("%s: %w", verb, err)
	}
	return rep, nil
}

func (c *ftpsConn) expect(want int) (ftp.Reply, error) {
	rep, err := c.r.ReadReply()
	if err != nil {
		return rep, err
	}
	if want != 0 && rep.Code != want {
		return rep, fmt.Errorf("unexpected reply %s", rep)
	}
	return rep, nil
}

// transfer runs one download-type command (LIST, RETR) over EPSV: the data
// is handed to sink as it arrives, and firstByte (if not nil) is called at
// the arrival of the first data byte. It returns the byte count once the
// final reply (226) has been read and the data connection has ended.
func (c *ftpsConn) transfer(ctx context.Context, verb, arg string, sink io.Writer, firstByte func()) (int64, error) {
	rep, err := c.cmd(ftp.StatusExtendedPassiveMode, "EPSV", "")
	if err != nil {
		return 0, err
	}
	port, err := ftp.ParseEPSV(rep.Text())
	if err != nil {
		return 0, err
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	dc, err := d.DialContext(dctx, "tcp", net.JoinHostPort(c.host, strconv.Itoa(int(port))))
	cancel()
	if err != nil {
		return 0, fmt.Errorf("data connection: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = dc.SetDeadline(dl)
	} else {
		_ = dc.SetDeadline(time.Now().Add(2 * time.Minute))
	}
	type res struct {
		n   int64
		err error
	}
	done := make(chan res, 1)
	// The data side runs beside the control side: some servers start the
	// TLS handshake before their 150, some after.
	go func() {
		tc := tls.Client(dc, c.conf)
		defer tc.Close()
		if err := tc.HandshakeContext(ctx); err != nil {
			done <- res{err: fmt.Errorf("data TLS handshake: %w", err)}
			return
		}
		n, err := io.Copy(sink, &firstByteReader{r: tc, f: firstByte})
		done <- res{n, err}
	}()
	if err := ftp.WriteCommand(c.conn, ftp.Command{Verb: verb, Arg: arg}); err != nil {
		dc.Close()
		<-done
		return 0, err
	}
	rep, err = c.r.ReadReply()
	if err == nil && rep.Code != ftp.StatusAboutToSend && rep.Code != 125 {
		err = fmt.Errorf("%s: unexpected reply %s", verb, rep)
	}
	if err != nil {
		dc.Close()
		<-done
		return 0, err
	}
	rep, err = c.r.ReadReply()
	if err == nil && rep.Code != ftp.StatusClosingDataConnection {
		err = fmt.Errorf("%s: final reply %s", verb, rep)
	}
	if err != nil {
		dc.Close()
		<-done
		return 0, err
	}
	r := <-done
	return r.n, r.err
}

// quit sends QUIT, reads 221 and closes.
func (c *ftpsConn) quit() error {
	_, err := c.cmd(ftp.StatusClosing, "QUIT", "")
	c.close()
	return err
}

func (c *ftpsConn) close() {
	if c.conn != nil {
		_ = c.conn.Close()
	} else {
		_ = c.raw.Close()
	}
}

// firstByteReader calls f before returning the first byte read.
type firstByteReader struct {
	r io.Reader
	f func()
}

func (r *firstByteReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 && r.f != nil {
		r.f()
		r.f = nil
	}
	return n, err
}
