package proxy

import (
	"errors"
	"net"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/proxy/relay"
)

// maxDeferred bounds the commands queued while a transfer runs.
const maxDeferred = 16

func isUpload(verb string) bool { return verb == "STOR" || verb == "STOU" || verb == "APPE" }

// transfer is one running data transfer, driven by the session goroutine.
type transfer struct {
	cmd      ftp.Command
	path     string // the path for logs and filters: virtual when confined, else cmd.Arg
	upload   bool
	d        *dataSetup
	start    time.Time
	client   net.Conn
	backend  net.Conn
	clientCh chan result[net.Conn]
	beCh     chan result[net.Conn]
	relayCh  chan relayResult
	relayed  *relayResult // set when the relay has finished
	final    *ftp.Reply   // the backend's final reply, once read
	failure  *ftp.Reply   // what the client gets instead, when the gateway gave up
	rest     string       // the REST argument before the command, if any
	filters  filter.Chain // nil: no filter needs the bytes
	hash     *filter.SHA256
	vetoed   *ftp.Reply    // a filter's veto: what the client gets instead of 226
	hold     *heldDownload // a download held until its verdict (held.go); nil: streamed
	sent     *ftp.Reply    // the final reply the client gets, once known
}

func (t *transfer) relayStarted() bool { return t.relayCh != nil || t.relayed != nil }

// closeData cuts both data connections: the relay, if running, returns.
// The sockets are reset under TLS: a tls.Conn's Close would first try to
// send close_notify, for up to 5 s, to a peer that may have stopped reading,
// and a cut transfer must not end like a complete one (a backend takes a
// FIN for the end of an upload).
func (t *transfer) closeData() {
	if t.client != nil {
		relay.ResetConn(t.client)
	}
	if t.backend != nil {
		relay.ResetConn(t.backend)
	}
	if t.d.backend != nil {
		relay.ResetConn(t.d.backend)
	}
	if t.hold != nil {
		_ = t.hold.sink.Close() // a held download's first relay stops
	}
	t.d.cancel()
}

// handleTransfer relays RETR, STOR, STOU, APPE, LIST, NLST and MLSD.
func (s *session) handleTransfer(cmd ftp.Command) error {
	if s.pending == nil {
		return s.reply(ftp.StatusCannotOpenDataConnection, "Use PASV, EPSV, PORT or EPRT first.")
	}
	if err := s.env.data.CheckTransfer(s.prot); err != nil {
		s.log.Warn().Str(fieldCommand, cmd.Verb).Msg("transfer on an unprotected data channel refused")
		return s.reply(521, "Data connections must be protected: send PROT P.")
	}
	d := s.pending
	s.pending = nil
	defer d.close()
	rest := s.rest
	s.rest = ""

	// Send and ReadReply, not Do: the final reply comes after the data
	// (runTransfer reads it in the background, with WantReply).
	if err := s.be.Send(s.ctx, cmd); err != nil {
		return s.backendFailed(err)
	}
	rep, err := s.be.ReadReply(s.ctx)
	if err != nil {
		return s.backendFailed(err)
	}
	if !rep.Preliminary() {
		return s.send(rep) // refused: 550 and the like
	}
	t := &transfer{
		cmd: cmd, path: cmd.Arg, upload: isUpload(cmd.Verb), d: d, start: time.Now(),
		clientCh: d.client, beCh: make(chan result[net.Conn], 1), rest: rest,
	}
	if s.vroot.pol != nil {
		t.path = s.vroot.path
	}
	s.transferFilters(t)
	defer t.closeData() // runs before d.close: nothing the relay holds stays open
	d.wg.Add(1)
	go func() { defer d.wg.Done(); s.secureBackendData(d, t.beCh) }()
	if d.active.IsValid() {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); s.dialClient(d) }()
	}
	if err := s.send(rep); err != nil {
		t.closeData()
		return err
	}
	return s.runTransfer(t)
}

// runTransfer waits for both data connections, relays, and sends the final
// reply only once the client's data connection is fully written and closed.
func (s *session) runTransfer(t *transfer) error {
	accept := time.NewTimer(s.env.cfg.Timeouts.dataAccept())
	defer accept.Stop()
	var finalWait <-chan time.Time // runs once the relay is over and the final reply is still due
	drain := s.env.drain
	if s.leaving {
		drain = nil
	}
	s.be.WantReply()
	s.wantCommandDuringTransfer()

	for t.relayed == nil || t.final == nil {
		select {
		case r := <-t.clientCh:
			t.clientCh = nil
			if r.err != nil {
				s.giveUp(t, r.err)
				break
			}
			t.client = r.v
		case r := <-t.beCh:
			t.beCh = nil
			if r.err != nil {
				s.giveUp(t, r.err)
				t.closeData() // the backend waits on a data connection that will not come
				break
			}
			t.backend = r.v
			if t.failure != nil {
				// The client side failed first: the backend's side is
				// ended the way it accepts (see giveUp).
				s.endBackendData(t)
			}
		case <-accept.C:
			// A held download's first relay runs without the client's
			// data connection: only the client's absence counts.
			switch {
			case t.hold != nil && t.hold.refused != nil && !t.relayStarted():
				s.refuseHeld(t, t.hold.refused) // without the client: its reply says why
			case !t.relayStarted() && (t.hold == nil || t.client == nil):
				s.giveUp(t, t.d.noClient())
			}
		case res := <-s.be.Replies():
			rep, err := s.be.Took(res)
			if err != nil {
				// Lost (a 421 too): the transfer is cut (426, or why the
				// gateway gave it up already), then the session ends.
				rep := connClosed
				if t.failure != nil {
					rep = *t.failure
				}
				_ = s.finishTransfer(t, rep, true, true)
				return s.backendFailed(err)
			}
			if rep.Preliminary() {
				// The transfer's own 1xx has been relayed already. Another
				// one is noise, and one kind is harmful: after a cut
				// transfer Pure-FTPd sends its statistics as a 150 and no
				// final reply, which a client would take for the final one.
				// Dropped; a cut transfer without a final reply ends in our
				// 426 below.
				s.log.Debug().Int(fieldCode, rep.Code).Str("reply", said(rep)).Msg("extra preliminary reply during a transfer dropped")
				s.be.WantReply()
				continue
			}
			t.final = &rep
			finalWait = nil // came: a held download's release may run on
			switch {
			case t.final.Positive():
			case t.hold != nil && !t.relayStarted():
				// The backend gave up on a held download: stop holding;
				// the client's data connection is still awaited, to be
				// refused (stepHold).
				_ = t.hold.sink.Close()
			default:
				// The backend gave up: stop relaying what is left.
				t.closeData()
			}
		case res := <-s.cmds.res:
			s.cmds.got()
			if res.err != nil && !errors.Is(res.err, ftp.ErrLineTooLong) && !errors.Is(res.err, ftp.ErrMalformedCommand) {
				_ = s.finishTransfer(t, ftp.Reply{}, true, false) // nobody to answer
				return s.clientReadError(res.err)
			}
			if res.err != nil {
				if err := s.badLine(res.err); err != nil {
					_ = s.finishTransfer(t, ftp.Reply{}, true, false)
					return err
				}
			} else if res.v.Verb == "ABOR" {
				s.logCommand(res.v)
				return s.abort(t)
			} else {
				s.deferred = append(s.deferred, res.v)
			}
			if len(s.deferred) < maxDeferred {
				s.wantCommandDuringTransfer()
			}
		case r := <-t.verdictCh():
			s.tookVerdict(t, r)
		case r := <-t.holdCh():
			t.holdOver(r)
			if t.final == nil {
				wait := s.env.cfg.Timeouts.idle()
				if r.cut() {
					wait = s.env.cfg.Timeouts.connect()
				}
				finalWait = time.After(wait)
			}
		case r := <-t.relayCh:
			t.relayOver(r)
			if t.final == nil {
				wait := s.env.cfg.Timeouts.idle()
				if r.cut() {
					wait = s.env.cfg.Timeouts.connect() // a cut transfer: the backend has nothing left to do
				}
				finalWait = time.After(wait)
			}
		case <-finalWait:
			if t.relayed != nil && t.relayed.cut() || t.holdCut() {
				s.log.Warn().Str(fieldCommand, t.cmd.Verb).Msg("no final reply from the backend after a cut transfer: answering 426 ourselves")
				return s.finishTransfer(t, connClosed, false, true)
			}
			_ = s.finishTransfer(t, ftp.NewReply(ftp.StatusNotAvailable, ""), false, false) // backendFailed answers
			return s.backendFailed(s.errorf("%w: no final reply after the transfer", errBackendLost))
		case <-drain:
			drain = nil
			s.leaving = true
		case <-s.ctx.Done():
			t.closeData()
			s.waitRelay(t)
			s.be.quit()
			if s.banned() {
				_ = s.finishTransfer(t, ftp.NewReply(ftp.StatusTransferAborted, "Transfer aborted."), false, true)
				return s.leaveBanned()
			}
			_ = s.finishTransfer(t, ftp.NewReply(ftp.StatusTransferAborted, "Transfer aborted: the gateway is shutting down."), false, true)
			return s.errorf("%w", errShuttingDown)
		}
		if t.hold != nil {
			s.stepHold(t)
		} else if !t.relayStarted() && t.failure == nil && t.client != nil && t.backend != nil {
			accept.Stop()
			s.startRelay(t)
		}
		if t.failure != nil && t.final != nil && !t.relayStarted() && !t.holding() {
			break
		}
		if finalWait == nil && t.final == nil && t.failure != nil && !t.relayStarted() && !t.holding() {
			finalWait = time.After(s.env.cfg.Timeouts.dataAccept())
		}
	}
	return s.endTransfer(t)
}

// wantCommandDuringTransfer keeps reading the control connection, so that
// ABOR is seen while data flows.
func (s *session) wantCommandDuringTransfer() {
	s.cmds.want(s.readCommandFunc())
}

// giveUp abandons a transfer the gateway cannot complete: the backend's
// side is cut, and its final reply is still read before the client hears why.
func (s *session) giveUp(t *transfer, err error) {
	if t.failure != nil {
		return
	}
	code, text := ftp.StatusCannotOpenDataConnection, "Cannot open data connection."
	if errors.Is(err, errDataTLS) {
		code, text = ftp.StatusNeedSecurityResource, "TLS negotiation on the data connection failed."
	}
	s.log.Warn().Err(err).Str(fieldCommand, t.cmd.Verb).Msg("data connection failed")
	rep := ftp.NewReply(code, text)
	t.failure = &rep
	// The client's side is cut. The backend's is ended politely: its TLS
	// handshake, if still running, may finish (beCh), then gets a
	// close_notify. vsftpd ends the whole session when a data connection's
	// TLS handshake fails (its RFC reading: "we can just close the control
	// channel"), ProFTPD when a TLS data connection dies under it.
	if t.client != nil {
		_ = rawConn(t.client).Close()
		t.client = nil
	}
	if t.d.lease != nil {
		t.d.lease.Release()
	}
	switch {
	case t.hold != nil && (t.holding() || t.hold.done != nil):
		_ = t.hold.sink.Close() // the first relay ends the backend's side
	case t.backend != nil:
		s.endBackendData(t)
	}
}

// endBackendData ends the backend's data connection of a transfer that
// failed on the client's side: close_notify (TLS) and FIN, then what the
// backend still sends is read and dropped until it closes or
// dataEndLinger passes. The backend then answers the transfer with its own
// final reply (426 or 226) and the session goes on.
func (s *session) endBackendData(t *transfer) {
	conn := t.backend
	t.backend, t.d.backend = nil, nil
	t.d.wg.Add(1)
	go func() {
		defer t.d.wg.Done()
		endDataConn(conn, dataEndLinger)
	}()
}

func (s *session) startRelay(t *transfer) {
	s.log.Debug().Str(fieldCommand, t.cmd.Verb).Msg("data connections ready: relaying")
	t.relayCh = make(chan relayResult, 1)
	src, dst, f := t.backend, t.client, t.filters
	if t.upload {
		src, dst = t.client, t.backend
	}
	if t.hold != nil {
		src, f = newHoldSource(t.hold.buf), t.hold.pace // the release
	}
	t.d.wg.Add(1)
	go func() {
		defer t.d.wg.Done()
		r := relay.Run(dst, src, relay.Opts{Idle: s.env.cfg.Timeouts.dataIdle(), FromBackend: !t.upload, Filter: f})
		if r.HandedOff() {
			// Drain in the background: the final reply need not wait for
			// the peer to close.
			s.wg.Add(1)
			go func() { defer s.wg.Done(); relay.DrainAndClose(dst, r.Gone) }()
		}
		t.relayCh <- fromRelay(r)
	}()
}

// relayOver takes the relay's result. After a clean end the relay's
// destination belongs to relay.DrainAndClose: nothing else may close it.
func (t *transfer) relayOver(r relayResult) {
	t.relayCh = nil
	t.relayed = &r
	if !r.handedOff() {
		return
	}
	if t.upload {
		t.backend, t.d.backend = nil, nil
	} else {
		t.client = nil
	}
}

// waitRelay waits for a relay whose connections were closed.
func (s *session) waitRelay(t *transfer) {
	if t.holding() {
		t.holdOver(<-t.hold.ch)
	}
	if t.relayCh != nil {
		t.relayOver(<-t.relayCh)
	}
}

// endTransfer asks the filters, sends the final reply and logs the
// transfer.
func (s *session) endTransfer(t *transfer) error {
	if err := s.finishFilters(t); err != nil {
		_ = s.finishTransfer(t, connClosed, false, true)
		return s.backendFailed(err)
	}
	var rep ftp.Reply
	switch {
	case t.failure != nil:
		rep = *t.failure
	case t.vetoed != nil:
		rep = *t.vetoed
	case t.relayed.err != nil && (t.final.Positive() || t.relayed.gatewayCut()):
		// The backend finished but the client did not get everything, or
		// the gateway cut the transfer (whatever the backend made of that).
		rep = connClosed
	default:
		rep = *t.final
	}
	return s.finishTransfer(t, rep, false, true)
}

// connClosed is the gateway's 426 for a transfer it could not complete.
var connClosed = ftp.NewReply(ftp.StatusTransferAborted, "Connection closed; transfer aborted.")

// finishTransfer is where every transfer ends: a normal end (endTransfer),
// a cut, ABOR, a lost backend or client, shutdown. cut: the data
// connections may still be open, and are cut first. The transfer is logged
// (account) with rep, the final reply the client gets, and its bytes are
// counted; rep is sent unless send is false (the caller answers otherwise,
// as backendFailed does, or the client is gone: rep's code is then 0).
func (s *session) finishTransfer(t *transfer, rep ftp.Reply, cut, send bool) error {
	if cut {
		t.closeData()
		s.waitRelay(t)
	}
	t.filters.Close() // a scan of a cut transfer lets go of its scanner
	s.closeHold(t)
	t.sent = &rep
	s.account(t)
	if !send {
		return nil
	}
	return s.send(rep)
}
