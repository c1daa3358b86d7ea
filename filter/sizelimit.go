package filter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// ErrSizeLimit: an upload passed its size limit (access.profiles.*.max_upload).
var ErrSizeLimit = errors.New("filter: upload size limit exceeded")

// StatusExceededStorage is RFC 959's 552, "Requested file action aborted.
// Exceeded storage allocation (for current directory or dataset)".
const StatusExceededStorage = 552

// VetoError is a filter's veto that cannot wait for Finish: Write returns
// it to cut the transfer at once. The relay returns it as its error
// (relay.Result.Err); the session finds it there with errors.As (VetoOf),
// answers Verdict instead of its 426 and, for an upload, removes the
// partial file on the backend as after a veto in Finish.
type VetoError struct {
	Verdict Verdict
	Err     error // why, for the log
}

func (e *VetoError) Error() string {
	return fmt.Sprintf("%v (veto %d)", e.Err, e.Verdict.Code)
}

func (e *VetoError) Unwrap() error { return e.Err }

// VetoOf reports the veto a filter's Write made, if err (a relay's error)
// carries one.
func VetoOf(err error) (Verdict, bool) {
	var v *VetoError
	if errors.As(err, &v) {
		return v.Verdict, true
	}
	return Verdict{}, false
}

// SizeLimit is the upload size filter: it counts the bytes as they stream
// and, at the first buffer that would take the file past its limit, stops
// the transfer. That buffer does not reach the backend: what the backend
// holds is at most the limit, and the session removes it (VetoError,
// 552). A transfer that ends at or below the limit passes.
//
// The count starts at the REST offset of a resumed STOR (the file's size
// is offset + bytes: resuming cannot grow a file past the limit). APPE
// adds to a file whose size the filter does not know: it bounds only the
// bytes appended.
type SizeLimit struct {
	limit    int64
	n        int64
	exceeded bool
}

// NewSizeLimit bounds a file at limit bytes (limit > 0), counting from
// start, the REST offset (Offset) of the transfer, 0 if none.
func NewSizeLimit(limit, start int64) *SizeLimit {
	return &SizeLimit{limit: limit, n: max(start, 0)}
}

// Offset reads a Meta's REST offset: 0 when none, or when it is no
// decimal number (the backend refused such a REST: it is not in Meta).
func Offset(m Meta) int64 {
	n, err := strconv.ParseInt(m.Offset, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// Size is the count so far: the start offset and the bytes that passed.
func (s *SizeLimit) Size() int64 { return s.n }

// Write counts p, and refuses it when it would take the file past the
// limit: the error (a *VetoError wrapping ErrSizeLimit) cuts the transfer.
func (s *SizeLimit) Write(p []byte) error {
	if s.exceeded {
		return s.veto()
	}
	if int64(len(p)) > s.limit-s.n {
		s.exceeded = true
		return s.veto()
	}
	s.n += int64(len(p))
	return nil
}

// Finish vetoes with 552 when the limit was passed (a session that asks
// after a cut gets the same answer), accepts otherwise.
func (s *SizeLimit) Finish(context.Context) (Verdict, error) {
	if s.exceeded {
		return s.verdict(), nil
	}
	return Verdict{}, nil
}

func (s *SizeLimit) verdict() Verdict {
	return Verdict{Veto: true, Code: StatusExceededStorage,
		Text: fmt.Sprintf("Exceeded storage allocation: uploads are limited to %d bytes.", s.limit)}
}

func (s *SizeLimit) veto() error {
	return &VetoError{Verdict: s.verdict(), Err: fmt.Errorf("%w: more than %d bytes", ErrSizeLimit, s.limit)}
}
