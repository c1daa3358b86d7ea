package proxy

import (
	"time"

	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// abortGrace is how long a backend gets to act on ABOR (ProFTPD and
// Pure-FTPd close the data connection themselves) before the gateway cuts
// the data connections (vsftpd reads no command during a transfer).
const abortGrace = 2 * time.Second

// abortQuiet is how long to wait for one more reply once ABOR looks
// answered: servers answer in orders that depend on timing.
const abortQuiet = 300 * time.Millisecond

// abort handles ABOR during a transfer (RFC 959 4.1.3). ABOR goes to the
// backend while the data connections stay open: ProFTPD drops the whole
// session when a TLS data connection dies under it, so it must be the one
// to end the transfer. A backend that has not ended it within abortGrace
// (vsftpd, which reads no command during a transfer) has the data cut.
//
// Backends answer in orders that depend on timing: vsftpd 426-225, ProFTPD
// 226-426, 426-426-226 or 426-226. The replies are read until the transfer's
// final reply and ABOR's have both come (at least two replies, one of them
// 2xx, when the transfer's was still due), plus abortQuiet for a straggler,
// and the client gets what RFC 959 prescribes: 426 (or the transfer's 226
// if it had completed), then ABOR's 2xx.
func (s *session) abort(t *transfer) error {
	if err := s.be.Send(s.ctx, ftp.Command{Verb: "ABOR"}); err != nil {
		_ = s.finishTransfer(t, ftp.NewReply(ftp.StatusNotAvailable, ""), true, false) // backendFailed answers
		return s.backendFailed(err)
	}
	need := 1
	if t.final == nil {
		need = 2 // the transfer's final reply, then ABOR's
	}
	var replies []ftp.Reply
	if t.final != nil {
		replies = append(replies, *t.final)
		need++
	}
	grace := time.NewTimer(abortGrace)
	defer grace.Stop()
	hard := time.NewTimer(abortGrace + s.env.cfg.Timeouts.connect())
	defer hard.Stop()
	var quiet <-chan time.Time
	answered := func() bool {
		if len(replies) < need {
			return false
		}
		for _, r := range replies {
			if r.Positive() {
				return true
			}
		}
		return false
	}
	s.be.WantReply()
wait:
	for {
		select {
		case r := <-t.relayCh:
			t.relayOver(r)
		case r := <-t.holdCh():
			t.holdOver(r)
		case res := <-s.be.Replies():
			rep, err := s.be.Took(res)
			if err != nil {
				_ = s.finishTransfer(t, connClosed, true, true)
				return s.backendFailed(err)
			}
			s.be.WantReply()
			if rep.Preliminary() {
				continue
			}
			replies = append(replies, rep)
			if answered() {
				quiet = time.After(abortQuiet) // (again, if one more came)
			}
		case <-grace.C:
			t.closeData()
		case <-quiet:
			break wait
		case <-hard.C:
			select {
			case res := <-s.be.Replies(): // one was waiting: take it
				rep, err := s.be.Took(res)
				if err != nil {
					_ = s.finishTransfer(t, connClosed, true, true)
					return s.backendFailed(err)
				}
				if !rep.Preliminary() {
					replies = append(replies, rep)
				}
				s.be.WantReply()
			default:
			}
			if !answered() {
				s.log.Warn().Int("replies", len(replies)).Msg("the backend did not answer ABOR in time")
			}
			break wait
		case <-s.ctx.Done():
			break wait
		}
	}
	cut := t.relayed == nil || t.relayed.cut()
	t.closeData()
	s.waitRelay(t)
	failed := cut
	var abor *ftp.Reply
	start := 0
	if t.final != nil {
		start = 1 // replies[0] is the transfer's final reply, read before ABOR
	}
	for i := start; i < len(replies); i++ {
		if !replies[i].Positive() {
			failed = true
		} else {
			abor = &replies[i]
		}
	}
	if t.final == nil && len(replies) > 0 {
		t.final = &replies[0]
	}
	if failed || t.final == nil {
		if err := s.finishTransfer(t, connClosed, false, true); err != nil {
			return err
		}
	} else {
		// The transfer was complete before ABOR: the filters have their say.
		if err := s.finishFilters(t); err != nil {
			return s.backendFailed(err)
		}
		rep := *t.final
		if t.vetoed != nil {
			rep = *t.vetoed
		}
		if err := s.finishTransfer(t, rep, false, true); err != nil {
			return err
		}
	}
	if abor == nil || abor == t.final {
		return s.reply(ftp.StatusClosingDataConnection, "ABOR command successful.")
	}
	return s.send(*abor)
}
