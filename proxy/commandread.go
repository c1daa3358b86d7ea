package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// Reading the client's commands: the next line or a deferred one, the idle
// and login timeouts, bad lines, and each command's log line.

// badLine answers a line that is too long or not a command, and counts it
// as protocol abuse.
func (s *session) badLine(err error) error {
	s.log.Warn().Err(err).Msg("bad command line")
	if s.abuse(policy.KindProtocol) {
		_ = s.reply(ftp.StatusNotAvailable, "Too many bad commands: closing control connection.")
		return s.errorf("%w: %w", errBanned, err)
	}
	if errors.Is(err, ftp.ErrLineTooLong) {
		return s.reply(ftp.StatusSyntaxError, "Command line too long.")
	}
	return s.reply(ftp.StatusSyntaxError, "Syntax error, command unrecognized.")
}

// logCommand starts a command: its line is written by commandDone, with
// the reply the client got. A command that arrives while another is open
// (ABOR during a transfer) closes that one first, with its reply so far.
func (s *session) logCommand(cmd ftp.Command) {
	s.commandDone()
	s.cmd, s.cmdOpen, s.lastCode = cmd, true, 0
	s.vroot.path, s.vroot.rule, s.vroot.allowed = "", "", false
}

// commandDone writes the open command's line, with the last reply code the
// client got for it (0: none), and emits its event.
func (s *session) commandDone() {
	if !s.cmdOpen {
		return
	}
	s.cmdOpen = false
	s.emit(events.Command{Session: s.ev(), Verb: s.cmd.Verb, Text: s.cmd.LogString(), Path: s.vroot.path,
		Rule: s.vroot.rule, Allowed: s.vroot.allowed, Code: s.lastCode})
}

// readCommandFunc returns a read of the next command on the current
// connection. It is evaluated by the reader goroutine.
func (s *session) readCommandFunc() func() (ftp.Command, error) {
	r := s.r
	return r.ReadCommand
}

// nextCommand returns a command deferred during a transfer, or waits for the
// next one, the idle timeout or shutdown.
func (s *session) nextCommand() (ftp.Command, error) {
	if s.ctx.Err() != nil && s.banned() {
		return ftp.Command{}, errBanned // before any deferred command
	}
	if len(s.deferred) > 0 {
		cmd := s.deferred[0]
		s.deferred = s.deferred[1:]
		return cmd, nil
	}
	timeout, idleErr := s.env.cfg.Timeouts.idle(), errIdle
	if !s.loggedIn {
		// Counted from connect, not from the last command: a session kept
		// alive with NOOP must still log in in time.
		left := time.Until(s.start.Add(s.env.cfg.Timeouts.login()))
		if left <= 0 {
			return ftp.Command{}, errLoginTimeout
		}
		if left < timeout {
			timeout, idleErr = left, errLoginTimeout
		}
	}
	if !s.cmds.busy {
		// The usual case: nothing else to wait for, read here.
		if s.stop.drainCtx.Err() != nil {
			return ftp.Command{}, s.stopped()
		}
		cmd, err := readNow(s.stop.drainCtx, s.conn, timeout, s.r.ReadCommand)
		switch {
		case err == nil, errors.Is(err, ftp.ErrLineTooLong), errors.Is(err, ftp.ErrMalformedCommand):
			return cmd, err
		case errors.Is(err, os.ErrDeadlineExceeded) && s.stop.drainCtx.Err() != nil:
			return ftp.Command{}, s.stopped()
		case errors.Is(err, os.ErrDeadlineExceeded):
			return ftp.Command{}, idleErr
		}
		return ftp.Command{}, s.clientReadError(err)
	}
	// A read started during a transfer is still out: take its line.
	idle := time.NewTimer(timeout)
	defer idle.Stop()
	select {
	case res := <-s.cmds.res:
		s.cmds.got()
		if res.err != nil && !errors.Is(res.err, ftp.ErrLineTooLong) && !errors.Is(res.err, ftp.ErrMalformedCommand) {
			return ftp.Command{}, s.clientReadError(res.err)
		}
		return res.v, res.err
	case <-idle.C:
		return ftp.Command{}, idleErr
	case <-s.stop.drainCtx.Done():
		return ftp.Command{}, s.stopped()
	case <-s.ctx.Done():
		return ftp.Command{}, s.stopped()
	}
}

func (s *session) clientReadError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return s.errorf("client closed the control connection: %w", err)
	}
	return s.errorf("read command: %w", err)
}
