package proxy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// Talking to the backend. Every command the gateway sends goes through one
// of two doors on the backend type, and every reply it reads passes one
// decision (lose):
//
//   - Do sends a command and reads its final reply: login, the data setup
//     (EPSV, PASV), relayed commands, REST, FEAT, DELE of a vetoed upload.
//   - Send and ReadReply are the two halves of Do, apart, for a transfer:
//     its command is answered 150 now and 226 (or 426...) only when the data
//     has passed, while the session waits for the data, the client and ABOR
//     at once. The final reply is then read in the background (WantReply)
//     and taken with Took, which decides like ReadReply. ABOR uses them too.
//
// The decision: a 421 from the backend, a write or read error, or no reply
// within the reply timeout means the backend is lost. The error wraps
// errBackendLost and the session id; the session answers the client 421
// and ends (backendFailed). Once lost, the backend takes nothing more.

// errReplyTimeout: the backend said nothing in time; the session ends.
var errReplyTimeout = errors.New("no reply")

// errorf wraps an error with the session id.
func (be *backend) errorf(format string, args ...any) error {
	return fmt.Errorf("session %s: "+format, append([]any{be.session}, args...)...)
}

// lose decides whether a reply or a read error loses the backend. Only
// stop errors (shutdown, ban) leave it as it is.
func (be *backend) lose(rep ftp.Reply, err error) (ftp.Reply, error) {
	switch {
	case err != nil && (errors.Is(err, errShuttingDown) || errors.Is(err, errBanned)):
		return rep, err
	case err != nil:
		be.lost = err
		return rep, err
	case rep.Code == ftp.StatusNotAvailable:
		be.lost = be.errorf("%w: the backend replied %d %s", errBackendLost, rep.Code, said(rep))
		return rep, be.lost
	}
	return rep, nil
}

// Do sends cmd and returns its final reply, bounded by the reply timeout
// and ctx. Preliminary replies before it go to prelim (nil: dropped). A 421
// or an I/O error returns an error wrapping errBackendLost (see lose).
func (be *backend) Do(ctx context.Context, cmd ftp.Command, prelim func(ftp.Reply) error) (ftp.Reply, error) {
	if err := be.Send(ctx, cmd); err != nil {
		return ftp.Reply{}, err
	}
	for {
		rep, err := be.ReadReply(ctx)
		if err != nil || !rep.Preliminary() {
			return rep, err
		}
		if prelim != nil {
			if err := prelim(rep); err != nil {
				return rep, err
			}
		}
	}
}

// Send writes cmd, bounded by writeTimeout (and ctx's deadline, if
// sooner). Only transfers and ABOR, which read their replies apart, call
// it themselves; everything else uses Do.
func (be *backend) Send(ctx context.Context, cmd ftp.Command) error {
	if be.lost != nil {
		return be.lost
	}
	dl := time.Now().Add(writeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = be.conn.SetWriteDeadline(dl)
	if err := ftp.WriteCommand(be.conn, cmd); err != nil {
		_, err = be.lose(ftp.Reply{}, be.errorf("%w: write %s: %w", errBackendLost, cmd.LogVerb(), err))
		return err
	}
	return nil
}

// ReadReply returns the backend's next reply, preliminary or final,
// bounded by the reply timeout and ctx. Only for transfers and ABOR (and
// the banner); everything else uses Do.
func (be *backend) ReadReply(ctx context.Context) (ftp.Reply, error) {
	if be.lost != nil {
		return ftp.Reply{}, be.lost
	}
	timeout := be.replyTimeout
	if !be.replies.busy {
		// The usual case: nothing else to wait for, read here.
		rep, err := readNow(ctx, be.conn, timeout, be.r.ReadReply)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
			return ftp.Reply{}, be.errorf("%w", stopCause(ctx))
		case errors.Is(err, os.ErrDeadlineExceeded):
			err = be.errorf("%w: %w", errBackendLost, errReplyTimeout)
		default:
			err = be.errorf("%w: %w", errBackendLost, err)
		}
		return be.lose(rep, err)
	}
	// A read started during a transfer is still out: take its reply.
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case res := <-be.replies.res:
		return be.Took(res)
	case <-t.C:
		return be.lose(ftp.Reply{}, be.errorf("%w: %w within %s", errBackendLost, errReplyTimeout, timeout))
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return be.lose(ftp.Reply{}, be.errorf("%w: %w", errBackendLost, errReplyTimeout))
		}
		return ftp.Reply{}, be.errorf("%w", stopCause(ctx))
	}
}

// WantReply starts reading the next reply in the background (a transfer's
// final reply, ABOR's): it arrives on Replies, to be passed to Took.
func (be *backend) WantReply() { be.replies.want(be.r.ReadReply) }

// Replies delivers the background reads WantReply starts.
func (be *backend) Replies() <-chan result[ftp.Reply] { return be.replies.res }

// Took takes a result received from Replies and decides on it as
// ReadReply does.
func (be *backend) Took(res result[ftp.Reply]) (ftp.Reply, error) {
	be.replies.got()
	if res.err != nil {
		return be.lose(res.v, be.errorf("%w: %w", errBackendLost, res.err))
	}
	return be.lose(res.v, nil)
}

// quit says goodbye without waiting for the answer.
func (be *backend) quit() {
	_ = be.Send(context.Background(), ftp.Command{Verb: "QUIT"})
}

func (be *backend) close() {
	_ = be.conn.Close()
	_ = be.raw.Close()
}

// stopCause is why a session's context ended: errBanned or
// errShuttingDown.
func stopCause(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), errBanned) {
		return errBanned
	}
	return errShuttingDown
}

// relay passes a command the gateway does not handle to the backend and its
// reply (preliminary ones too) back.
func (s *session) relay(cmd ftp.Command) error {
	if s.be == nil {
		return s.reply(ftp.StatusNotLoggedIn, "Please login with USER and PASS.")
	}
	rep, err := s.be.Do(s.ctx, cmd, s.send)
	if err != nil {
		return s.backendFailed(err)
	}
	return s.send(rep)
}

// backendFailed tells the client that the backend is gone and ends the session.
func (s *session) backendFailed(err error) error {
	if errors.Is(err, errBanned) && s.banned() {
		return s.leaveBanned()
	}
	if errors.Is(err, errShuttingDown) {
		_ = s.reply(ftp.StatusNotAvailable, "Service shutting down, closing control connection.")
		return err
	}
	s.log.Error().Err(err).Msg("backend failed")
	_ = s.reply(ftp.StatusNotAvailable, "Service not available: lost the connection to the server behind the gateway.")
	return err
}
