package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/proxy/hold"
	"github.com/ftpsgate/ftpsgate/proxy/relay"
)

// A held download (Config.HoldDownloads, inspect.downloads: hold) runs in
// two relays. The first copies the backend's data connection into a
// hold.Buffer through the filters, as soon as the backend's data
// connection is there (the client's need not be). Once it has ended and
// the backend's final reply has come, the transfer is judged (judgeHeld):
// a download that is complete (no cut, no truncation, a 2xx from the
// backend) and that every filter's Finish passes (Finish runs on a
// goroutine of its own: ABOR is answered meanwhile) is released: the second
// relay copies the held bytes to the client's data connection (paced by
// the bandwidth throttle, if any), and the backend's 226 follows as for
// any download. Any other outcome is refused: the client's data connection
// (awaited first, either way) is reset without a byte of the file, and the client gets the filter's
// veto (550; a download cut by DLP's 426 becomes 550: nothing was sent),
// the gateway's 426 (truncated or idle backend data) or the backend's own
// failure reply.
//
// While the gateway holds, the client's data connection is open and idle:
// the gateway sets no timer on it (timeouts.data_idle applies to each
// relay, not to the wait between them), so a client's own data timeout
// must be longer than the time a file takes to come from the backend and
// be judged.

// heldDownload is a held download's state.
type heldDownload struct {
	buf     *hold.Buffer
	sink    *holdSink
	src     net.Conn         // the backend's data connection, once the first relay has it
	ch      chan relayResult // the first relay runs
	done    *relayResult     // the first relay is over
	pace    filter.Chain     // the bandwidth throttle: paces the release
	ok      bool             // judged clean: the held bytes go to the client
	refused error            // judged and refused: why (refuseHeld, once the client is there)
	judged  bool
	verdict chan heldVerdict // the filters' Finish runs
}

// heldVerdict is what the filters' Finish returned.
type heldVerdict struct {
	v   filter.Verdict
	err error
}

// verdictCh is the channel of a running Finish; nil (never ready) when
// none runs.
func (t *transfer) verdictCh() <-chan heldVerdict {
	if t.hold == nil {
		return nil
	}
	return t.hold.verdict
}

// errHeldRefused: a held download that the gateway did not release (the
// backend failed it, or a filter vetoed it in Finish).
var errHeldRefused = errors.New("held download not released to the client")

// holdDownload makes t a held download. The throttle, the first filter
// when set, moves to the release: it paces what the client receives.
func (s *session) holdDownload(t *transfer) {
	buf := hold.New(s.env.cfg.Hold)
	t.hold = &heldDownload{buf: buf, sink: newHoldSink(buf)}
	if s.throttle != nil && len(t.filters) > 0 {
		t.hold.pace, t.filters = t.filters[:1:1], t.filters[1:]
	}
}

// holding reports whether the first relay of a held download runs.
func (t *transfer) holding() bool { return t.hold != nil && t.hold.ch != nil }

// holdCh is the first relay's result channel; nil (never ready) when none
// runs.
func (t *transfer) holdCh() <-chan relayResult {
	if t.hold == nil {
		return nil
	}
	return t.hold.ch
}

// holdCut reports whether a held download's first relay was cut.
func (t *transfer) holdCut() bool { return t.hold != nil && t.hold.done != nil && t.hold.done.cut() }

// stepHold moves a held download on after each event of runTransfer:
// it starts the first relay, judges the download, starts the release.
func (s *session) stepHold(t *transfer) {
	h := t.hold
	if h.ch == nil && h.done == nil && t.failure == nil && t.backend != nil && (t.final == nil || t.final.Positive()) {
		s.startHold(t)
	}
	// Judged once the first relay is over and the backend's final reply is
	// in, or when that reply says the backend failed before it began.
	if t.final != nil && t.failure == nil && !h.judged && (h.done != nil || h.ch == nil && !t.final.Positive()) {
		s.judgeHeld(t)
	}
	// Either way the client's data connection is awaited first: a client
	// whose data connection is cut before its TLS handshake ends may keep
	// a session that resumes nothing it may use (Go's crypto/tls), and one
	// that connects after the final reply finds no port.
	switch {
	case t.client == nil || t.failure != nil || t.relayStarted():
	case h.refused != nil:
		s.refuseHeld(t, h.refused)
	case h.ok:
		s.startRelay(t)
	}
}

// startHold starts the first relay: the backend's data into the buffer.
// The backend's connection stays t.backend, for closeData.
func (s *session) startHold(t *transfer) {
	s.log.Debug().Str(fieldCommand, t.cmd.Verb).Msg("backend data connection ready: holding the download")
	h := t.hold
	h.ch = make(chan relayResult, 1)
	h.src = t.backend
	src, sink, f := t.backend, h.sink, t.filters
	t.d.wg.Add(1)
	go func() {
		defer t.d.wg.Done()
		r := relay.Run(sink, src, relay.Opts{Idle: s.env.cfg.Timeouts.dataIdle(), FromBackend: true, Filter: f})
		_ = sink.Close()
		h.ch <- fromRelay(r)
	}()
}

// holdOver takes the first relay's result.
func (t *transfer) holdOver(r relayResult) {
	t.hold.ch = nil
	t.hold.done = &r
}

// judgeHeld decides a held download whose backend final reply has come
// and whose first relay is over (or never began: the backend failed
// first): released (h.ok) or refused (h.refused).
func (s *session) judgeHeld(t *transfer) {
	h := t.hold
	h.judged = true
	p := h.done
	switch {
	case p == nil:
		h.refused = errHeldRefused
		return
	case errors.Is(p.err, hold.ErrTooLarge):
		h.refused = s.tooLargeToHold(t, p.err)
		return
	case p.err != nil:
		h.refused = p.err // a veto in Write, a truncation, an idle backend
		return
	case p.peerClosed || !t.final.Positive():
		h.refused = errHeldRefused
		return
	}
	// The verdict (an ICAP server's, after the last byte) may take a
	// while: the session goes on meanwhile, to answer ABOR. A cut
	// transfer's closeData cancels t.d.ctx, and filter.Chain.Close the
	// scans: Finish then returns.
	h.verdict = make(chan heldVerdict, 1)
	f, ctx := t.filters, t.d.ctx
	t.d.wg.Add(1)
	go func() {
		defer t.d.wg.Done()
		v, err := f.Finish(ctx)
		h.verdict <- heldVerdict{v, err}
	}()
}

// tookVerdict takes the filters' verdict on a held download.
func (s *session) tookVerdict(t *transfer, r heldVerdict) {
	h := t.hold
	h.verdict = nil
	if r.v.Veto {
		_ = s.veto(t, r.v, r.err) // a download: nothing to remove, no error
		h.refused = errHeldRefused
		return
	}
	s.log.Debug().Str(fieldCommand, t.cmd.Verb).Int64("held_bytes", h.buf.Len()).Msg("held download judged clean: releasing it")
	h.ok = true
}

// refuseHeld ends a held download that will not be released: the client's
// data connection, if there, is reset without a byte of the file, and endTransfer
// answers from err (a *filter.VetoError: its veto) or from the backend's
// final reply. The relay result says zero bytes reached the client.
func (s *session) refuseHeld(t *transfer, err error) {
	r := relay.Result{Err: err}
	t.relayed = &relayResult{err: err, res: r}
	t.closeData()
	t.client = nil
}

// tooLargeToHold is the veto of a download past inspect.hold.max_bytes:
// 550 with a reference id, an inspection event (detector hold.max_bytes,
// for the audit trail) and the log line of the veto.
func (s *session) tooLargeToHold(t *transfer, err error) error {
	var b [6]byte
	_, _ = rand.Read(b[:])
	ref := hex.EncodeToString(b[:])
	s.emit(events.Inspection{Session: s.ev(), Path: t.path, Detector: "hold.max_bytes", Count: 1, Action: "block", Ref: ref})
	return &filter.VetoError{
		Verdict: filter.Verdict{Veto: true, Code: ftp.StatusFileUnavailable,
			Text: fmt.Sprintf("Download refused: the file is larger than the gateway can hold for inspection (ref %s).", ref)},
		Err: fmt.Errorf("%w (ref %s)", err, ref),
	}
}

// closeHold lets a held download's buffer go (its spill file with it),
// once its first relay is over.
func (s *session) closeHold(t *transfer) {
	if t.hold == nil {
		return
	}
	if t.holding() {
		_ = t.hold.sink.Close()
		t.holdOver(<-t.hold.ch)
	}
	if err := t.hold.buf.Close(); err != nil {
		s.log.Error().Err(err).Msg("releasing a held download's spill file failed")
	}
}
