package proxy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// HashMode says which transfers the SHA-256 filter hashes (transfers.hash).
type HashMode int

// The hash modes. The zero value hashes uploads.
const (
	HashUploads HashMode = iota // STOR, STOU, APPE (the default)
	HashAll                     // uploads and RETR
	HashOff                     // none: plain-to-plain transfers keep splice
)

// ParseHashMode parses "uploads", "all" or "off".
func ParseHashMode(s string) (HashMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "uploads", "":
		return HashUploads, nil
	case "all":
		return HashAll, nil
	case "off":
		return HashOff, nil
	}
	return 0, fmt.Errorf("%q is not a hash mode (want uploads, all or off)", s)
}

func (m HashMode) String() string {
	switch m {
	case HashUploads:
		return "uploads"
	case HashAll:
		return "all"
	case HashOff:
		return "off"
	}
	return fmt.Sprintf("HashMode(%d)", int(m))
}

// transferFilters builds the filter pipeline of a transfer: the bandwidth
// throttle, then, for a file (not a listing), the SHA-256 filter when
// transfers.hash asks for it and Config.Filters. Nil when no filter needs the bytes: the relay then keeps
// its fastest copy (splice between plain connections).
func (s *session) transferFilters(t *transfer) {
	if s.throttle != nil {
		// The bandwidth limits, on every transfer, listings too.
		t.filters = append(t.filters, filter.NewThrottle(t.d.ctx, s.throttle))
	}
	if t.cmd.Verb != "RETR" && !t.upload {
		return
	}
	meta := filter.Meta{
		Session: s.id, User: s.user, Groups: s.groups, Verb: t.cmd.Verb, Direction: filter.Download,
		Path: t.path, BackendPath: t.cmd.Arg, Offset: t.rest,
	}
	if t.upload {
		meta.Direction = filter.Upload
	}
	if pol := s.vroot.pol; t.upload && pol != nil && pol.MaxUpload > 0 {
		// Before the hash: a buffer past the limit is hashed by no one.
		t.filters = append(t.filters, filter.NewSizeLimit(pol.MaxUpload, filter.Offset(meta)))
	}
	cfg := s.env.cfg
	if cfg.Hash == HashAll || (cfg.Hash == HashUploads && t.upload) {
		t.hash = filter.NewSHA256()
		t.filters = append(t.filters, t.hash)
	}
	if cfg.Filters != nil {
		inspect := cfg.Filters(meta)
		t.filters = append(t.filters, inspect...)
		if len(inspect) > 0 && cfg.HoldDownloads && !t.upload {
			s.holdDownload(t)
		}
	}
}

// finishFilters asks the filters for their verdict on a transfer whose
// data passed completely and which the backend accepted, or takes the veto
// a filter made while the data streamed (an upload past max_upload). A veto
// replaces the final reply; for an upload the file is removed on the
// backend (DELE; STOU's name is the backend's choice and is left).
func (s *session) finishFilters(t *transfer) error {
	if t.relayed != nil && t.failure == nil {
		if v, ok := filter.VetoOf(t.relayed.err); ok {
			return s.veto(t, v, t.relayed.err)
		}
	}
	if t.hold != nil && t.hold.judged {
		return nil // judgeHeld asked them, before the release
	}
	if len(t.filters) == 0 || t.failure != nil || t.final == nil || !t.final.Positive() ||
		t.relayed == nil || t.relayed.err != nil || t.relayed.peerClosed {
		return nil
	}
	v, err := t.filters.Finish(s.ctx)
	if !v.Veto {
		return nil
	}
	return s.veto(t, v, err)
}

// veto answers t with a filter's veto v instead of its final reply and
// removes a vetoed upload from the backend.
func (s *session) veto(t *transfer, v filter.Verdict, err error) error {
	if t.hold != nil && v.Code == ftp.StatusTransferAborted {
		// A download cut as it streams gets 426; held, it was not sent.
		v.Code = ftp.StatusFileUnavailable
	}
	ev := s.log.Warn().Str(fieldCommand, t.cmd.Verb).Str(fieldPath, t.path).Int(fieldCode, v.Code)
	if err != nil {
		ev = ev.Err(err)
	}
	ev.Msg("transfer vetoed by a filter")
	rep := ftp.NewReply(v.Code, v.Text)
	t.vetoed = &rep
	if !t.upload || t.cmd.Verb == "STOU" {
		return nil
	}
	if errors.Is(err, filter.ErrSizeLimit) && (t.cmd.Verb == "APPE" || t.rest != "") {
		// The file was there before this upload: removing it would lose
		// that part too, and what this upload added stops at the limit.
		s.log.Info().Str(fieldPath, t.cmd.Arg).Msg("upload past max_upload appended to an existing file: the file is kept, up to the limit")
		return nil
	}
	if errors.Is(err, filter.ErrPartialTransfer) {
		// Refused at its first byte: the file is as it was.
		s.log.Info().Str(fieldPath, t.cmd.Arg).Msg("resumed or appended upload refused by inspection: the file is kept as it was")
		return nil
	}
	dele, err := s.ask(ftp.Command{Verb: "DELE", Arg: t.cmd.Arg})
	if err != nil {
		return err // the backend is gone: the session ends
	}
	if dele.Positive() {
		s.log.Info().Str(fieldPath, t.cmd.Arg).Msg("vetoed upload removed from the backend")
	} else {
		s.log.Error().Str(fieldPath, t.cmd.Arg).Int(fieldCode, dele.Code).Str("reply", said(dele)).Msg("removing a vetoed upload failed: the file stays on the backend")
	}
	return nil
}

// hashFields are the SHA-256 filter's result for the transfer log line.
type hashFields struct {
	sum    string // "": not hashed
	size   int64
	offset string // REST: the hash covers the part from there
}

// A cut transfer has none: the hash of a truncated stream must not pass for
// the file's.
func (t *transfer) hashResult() hashFields {
	if t.hash == nil || t.relayed == nil || t.relayed.cut() {
		return hashFields{}
	}
	return hashFields{sum: t.hash.Sum(), size: t.hash.Size(), offset: t.rest}
}

// handleREST relays REST and remembers its argument for the next transfer:
// a resumed transfer's hash covers only the part that passed.
func (s *session) handleREST(cmd ftp.Command) error {
	s.rest = ""
	if s.be == nil {
		return s.relay(cmd) // 530
	}
	rep, err := s.be.Do(s.ctx, cmd, s.send)
	if err != nil {
		return s.backendFailed(err)
	}
	if rep.Code == ftp.StatusFileActionPending {
		s.rest = cmd.Arg
	}
	return s.send(rep)
}
