package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/proxy/relay"
)

// HASH (draft-bryan-ftpext-hash) and XSHA256 for the client: a partner
// verifies an upload end to end. The gateway offers SHA-256 only.
//
//   - When the backend advertises HASH with SHA-256 (FEAT), the gateway
//     selects it there (OPTS HASH SHA-256) and relays HASH; XSHA256 is
//     relayed when the backend advertises XSHA256.
//   - Otherwise the gateway computes it: it opens a backend data connection
//     itself (passive, TLS when the backend is TLS, as a RETR would), sends
//     TYPE I, SIZE (to refuse a file over the limit before reading it),
//     REST when a REST preceded HASH, RETR, streams the bytes through
//     SHA-256 under the data idle timeout and at most
//     transfers.hash_command_max_size bytes, and restores the session's
//     TYPE. The client needs no data connection.
//
// HASH answers "213 SHA-256 START-END HEX path" (END exclusive: 0-SIZE for
// the whole file, as ProFTPD's mod_digest answers), XSHA256 "250 HEX".
// A failure half-way answers 451 and the session goes on; a lost backend
// ends it (backendFailed).

// DefaultHashCommandMaxSize bounds what the gateway reads to answer HASH.
const DefaultHashCommandMaxSize int64 = 1 << 30

// hashAlgo is the one algorithm the gateway's HASH offers.
const hashAlgo = "SHA-256"

// hashCommandMaxSize is the computed fallback's bound; 0: no fallback.
func (c Config) hashCommandMaxSize() int64 {
	switch {
	case c.HashCommandMaxSize < 0:
		return 0
	case c.HashCommandMaxSize == 0:
		return DefaultHashCommandMaxSize
	}
	return c.HashCommandMaxSize
}

// hashState is what a session knows about HASH on its backend.
type hashState struct {
	beFeats   []string // the backend's FEAT lines, once asked
	beAsked   bool     //
	beHashOK  bool     // OPTS HASH SHA-256 accepted by the backend
	beHashBad bool     // the backend refused it: compute
	xferType  string   // the last TYPE the backend accepted ("" : the default, A)
}

// backendFeatures asks the backend's FEAT once and keeps its lines.
func (s *session) backendFeatures() ([]string, error) {
	if s.hash.beAsked {
		return s.hash.beFeats, nil
	}
	rep, err := s.ask(ftp.Command{Verb: "FEAT"})
	if err != nil {
		return nil, err
	}
	s.hash.beAsked = true
	if rep.Code == ftp.StatusSystemStatus {
		s.hash.beFeats = ftp.ParseFeatures(rep)
	}
	return s.hash.beFeats, nil
}

// backendHas says whether the backend's FEAT lists name (for HASH: with
// SHA-256 among its algorithms).
func backendHas(feats []string, name string) bool {
	for _, f := range feats {
		if ftp.FeatureName(f) != name {
			continue
		}
		if name != "HASH" {
			return true
		}
		_, algos, _ := strings.Cut(strings.TrimSpace(f), " ")
		for _, a := range strings.Split(algos, ";") {
			if strings.EqualFold(strings.TrimSuffix(strings.TrimSpace(a), "*"), hashAlgo) {
				return true
			}
		}
	}
	return false
}

// hashFeatures are the FEAT lines the gateway shows for HASH and XSHA256
// (none when it can neither relay nor compute).
func (s *session) hashFeatures(feats []string) []string {
	if s.env.cfg.hashCommandMaxSize() == 0 && !backendHas(feats, "HASH") {
		if backendHas(feats, "XSHA256") {
			return []string{"XSHA256"}
		}
		return nil
	}
	return []string{"HASH " + hashAlgo + "*", "XSHA256"}
}

// handleTYPE relays TYPE and remembers what the backend accepted: the
// computed HASH switches to TYPE I and back.
func (s *session) handleTYPE(cmd ftp.Command) error {
	if s.be == nil {
		return s.relay(cmd)
	}
	rep, err := s.be.Do(s.ctx, cmd, s.send)
	if err != nil {
		return s.backendFailed(err)
	}
	if rep.Class() == 2 {
		s.hash.xferType = strings.ToUpper(strings.Join(strings.Fields(cmd.Arg), " "))
	}
	return s.send(rep)
}

// optsHash answers OPTS HASH [algorithm]: only SHA-256 is offered.
func (s *session) optsHash(arg string) error {
	f := strings.Fields(arg)
	switch {
	case len(f) == 1:
		return s.reply(ftp.StatusCommandOK, hashAlgo)
	case len(f) == 2 && strings.EqualFold(f[1], hashAlgo):
		return s.reply(ftp.StatusCommandOK, hashAlgo)
	case len(f) == 2:
		return s.reply(ftp.StatusNotImplementedParameter, f[1]+": Unsupported algorithm (only "+hashAlgo+").")
	}
	return s.reply(ftp.StatusSyntaxErrorParameters, "OPTS HASH takes one algorithm name.")
}

func isOptsHash(arg string) bool {
	f := strings.Fields(arg)
	return len(f) > 0 && strings.EqualFold(f[0], "HASH")
}

func (s *session) handleHASH(cmd ftp.Command) error    { return s.hashCommand(cmd, cmd.Arg) }
func (s *session) handleXSHA256(cmd ftp.Command) error { return s.hashCommand(cmd, cmd.Arg) }

// hashCommand answers HASH or XSHA256; send is the command as the backend
// gets it (confined: the backend path), named the path as the client named it.
func (s *session) hashCommand(send ftp.Command, named string) error {
	if s.be == nil {
		return s.reply(ftp.StatusNotLoggedIn, "Please login with USER and PASS.")
	}
	if strings.TrimSpace(send.Arg) == "" {
		return s.reply(ftp.StatusSyntaxErrorParameters, send.Verb+" needs a path.")
	}
	feats, err := s.backendFeatures()
	if err != nil {
		return s.backendFailed(err)
	}
	if send.Verb == "XSHA256" && backendHas(feats, "XSHA256") {
		return s.relay(send)
	}
	if send.Verb == "HASH" && backendHas(feats, "HASH") && !s.hash.beHashBad {
		if !s.hash.beHashOK {
			rep, err := s.ask(ftp.Command{Verb: "OPTS", Arg: "HASH " + hashAlgo})
			if err != nil {
				return s.backendFailed(err)
			}
			s.hash.beHashOK = rep.Class() == 2
			s.hash.beHashBad = !s.hash.beHashOK
		}
		if s.hash.beHashOK {
			return s.relay(send)
		}
		s.log.Warn().Msg("the backend advertises HASH " + hashAlgo + " but refused OPTS HASH " + hashAlgo + ": computing it here")
	}
	max := s.env.cfg.hashCommandMaxSize()
	if max == 0 {
		return s.reply(ftp.StatusNotImplemented, send.Verb+" is not available here.")
	}
	if s.pending != nil {
		// The backend has one passive port: a second would take it away
		// from the transfer the client prepared.
		return s.reply(ftp.StatusBadSequence, send.Verb+" cannot be answered while a data connection is prepared: transfer first.")
	}
	return s.computeHash(send, named, max)
}

// errHashTooLarge: the file is over transfers.hash_command_max_size.
var errHashTooLarge = errors.New("file over transfers.hash_command_max_size")

// computeHash reads the file from the backend and answers its SHA-256.
func (s *session) computeHash(send ftp.Command, named string, max int64) error {
	path := send.Arg
	var offset int64
	if s.rest != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(s.rest), 10, 64)
		if err != nil || n < 0 {
			return s.reply(ftp.StatusNotImplementedParameter, send.Verb+" takes a decimal REST offset only.")
		}
		offset = n
	}
	restore := s.hash.xferType != "I" && s.hash.xferType != "L 8"
	if restore {
		rep, err := s.ask(ftp.Command{Verb: "TYPE", Arg: "I"})
		if err != nil {
			return s.backendFailed(err)
		}
		if rep.Class() != 2 {
			s.log.Warn().Int(fieldCode, rep.Code).Str("reply", said(rep)).Msg("hash: the backend refused TYPE I")
			return s.reply(ftp.StatusLocalError, "Cannot hash the file: the server refused binary mode.")
		}
	}
	sum, n, rep, err := s.hashFromBackend(path, offset, max)
	if restore {
		typ := s.hash.xferType
		if typ == "" {
			typ = "A"
		}
		if r, err2 := s.ask(ftp.Command{Verb: "TYPE", Arg: typ}); err2 != nil {
			if err == nil || !errors.Is(err, errBackendLost) {
				err = err2
			}
		} else if r.Class() != 2 {
			s.log.Warn().Int(fieldCode, r.Code).Str("type", typ).Msg("hash: the backend refused to restore TYPE")
		}
	}
	switch {
	case err != nil && errors.Is(err, errBackendLost), err != nil && (errors.Is(err, errShuttingDown) || errors.Is(err, errBanned)):
		return s.backendFailed(err)
	case errors.Is(err, errHashTooLarge):
		s.log.Warn().Str(fieldPath, named).Int64("max", max).Msg("hash refused: the file is over transfers.hash_command_max_size")
		return s.reply(ftp.StatusExceededStorage, named+": file too large to hash here (transfers.hash_command_max_size).")
	case err != nil && rep.Code != 0:
		return s.send(rep) // the backend's own refusal: 550 and the like
	case err != nil:
		s.log.Warn().Err(err).Str(fieldCommand, send.Verb).Str(fieldPath, named).Msg("hash failed")
		return s.reply(ftp.StatusLocalError, "Cannot hash the file: reading it from the server failed.")
	}
	s.log.Info().Str(fieldCommand, send.Verb).Str(fieldPath, named).Int64("offset", offset).Int64("size", n).Str("sha256", sum).Msg("hash computed")
	if send.Verb == "XSHA256" {
		return s.reply(ftp.StatusFileActionOK, strings.ToUpper(sum))
	}
	return s.reply(ftp.StatusFileStatus, fmt.Sprintf("%s %d-%d %s %s", hashAlgo, offset, offset+n, sum, named))
}

// hashFromBackend runs SIZE, the data connection, REST and RETR. rep is
// set (with err) when the backend refused the file: the client gets it.
func (s *session) hashFromBackend(path string, offset, max int64) (sum string, n int64, rep ftp.Reply, err error) {
	size := int64(-1)
	r, err := s.ask(ftp.Command{Verb: "SIZE", Arg: path})
	if err != nil {
		return "", 0, ftp.Reply{}, err
	}
	switch {
	case r.Code == ftp.StatusFileStatus:
		if v, perr := strconv.ParseInt(strings.TrimSpace(r.Text()), 10, 64); perr == nil && v >= 0 {
			size = v
		}
	case r.Code == ftp.StatusFileUnavailable:
		return "", 0, r, s.errorf("SIZE refused: %d", r.Code)
	}
	if size >= 0 && size-offset > max {
		return "", 0, ftp.Reply{}, s.errorf("%w: %d bytes", errHashTooLarge, size-offset)
	}
	if size >= 0 && offset > size {
		return "", 0, ftp.NewReply(ftp.StatusNotImplementedParameter, "REST offset past the end of the file."), s.errorf("offset %d past size %d", offset, size)
	}
	d, err := s.prepareData()
	if err != nil {
		return "", 0, ftp.Reply{}, err
	}
	defer d.close()
	if offset > 0 {
		r, err := s.ask(ftp.Command{Verb: "REST", Arg: strconv.FormatInt(offset, 10)})
		if err != nil {
			return "", 0, ftp.Reply{}, err
		}
		if r.Code != ftp.StatusFileActionPending {
			return "", 0, ftp.NewReply(ftp.StatusNotImplementedParameter, "The server refused the REST offset."), s.errorf("REST refused: %d", r.Code)
		}
	}
	s.rest = "" // the backend's REST is RETR's now
	if err := s.be.Send(s.ctx, ftp.Command{Verb: "RETR", Arg: path}); err != nil {
		return "", 0, ftp.Reply{}, err
	}
	r, err = s.be.ReadReply(s.ctx)
	if err != nil {
		return "", 0, ftp.Reply{}, err
	}
	if !r.Preliminary() {
		if r.Class() == 5 {
			return "", 0, r, s.errorf("RETR refused: %d", r.Code)
		}
		return "", 0, ftp.Reply{}, s.errorf("RETR refused: %d %s", r.Code, said(r))
	}
	ch := make(chan result[net.Conn], 1)
	s.secureBackendData(d, ch)
	res := <-ch
	var readErr error
	if res.err != nil {
		readErr = res.err
		relay.ResetConn(d.backend)
	} else {
		sum, n, readErr = s.readHashed(res.v, max)
		if readErr != nil {
			relay.ResetConn(res.v)
		} else {
			_ = res.v.Close()
		}
	}
	d.backend = nil
	// The transfer's final reply, after a cut too (426 then): the backend
	// is left ready for the next command.
	final, err := s.readFinal()
	if err != nil {
		return "", 0, ftp.Reply{}, err
	}
	switch {
	case readErr != nil:
		return "", 0, ftp.Reply{}, readErr
	case !final.Positive():
		return "", 0, ftp.Reply{}, s.errorf("the backend ended RETR with %d %s", final.Code, said(final))
	case size >= 0 && n != size-offset:
		return "", 0, ftp.Reply{}, s.errorf("read %d bytes, SIZE said %d", n, size-offset)
	}
	return sum, n, ftp.Reply{}, nil
}

// readHashed reads c to its end through SHA-256: each read bounded by the
// data idle timeout, at most max bytes. A TLS stream that ends without
// close_notify is an error (io.ErrUnexpectedEOF), not an end.
func (s *session) readHashed(c net.Conn, max int64) (string, int64, error) {
	stop := context.AfterFunc(s.ctx, func() { relay.ResetConn(c) })
	defer stop()
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var n int64
	idle := s.env.cfg.Timeouts.dataIdle()
	for {
		_ = c.SetReadDeadline(time.Now().Add(idle))
		k, err := c.Read(buf)
		if k > 0 {
			n += int64(k)
			if n > max {
				return "", n, s.errorf("%w: more than %d bytes", errHashTooLarge, max)
			}
			h.Write(buf[:k])
		}
		if errors.Is(err, io.EOF) {
			return hex.EncodeToString(h.Sum(nil)), n, nil
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return "", n, s.errorf("%w", stopCause(s.ctx))
			}
			return "", n, s.errorf("reading the file: %w", err)
		}
	}
}

// readFinal reads the backend's final reply to a command already sent,
// dropping preliminary ones (at most a few: each is bounded by the reply
// timeout, their number too).
func (s *session) readFinal() (ftp.Reply, error) {
	for i := 0; ; i++ {
		r, err := s.be.ReadReply(s.ctx)
		if err != nil || !r.Preliminary() {
			return r, err
		}
		if i == maxDeferred {
			return s.be.lose(r, s.be.errorf("%w: preliminary replies without end", errBackendLost))
		}
	}
}
