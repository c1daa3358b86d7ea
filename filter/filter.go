package filter

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Direction is which way a transfer's bytes go.
type Direction int

// The directions of a transfer.
const (
	Download Direction = iota // backend to client (RETR)
	Upload                    // client to backend (STOR, STOU, APPE)
)

func (d Direction) String() string {
	if d == Upload {
		return "upload"
	}
	return "download"
}

// Meta is what a filter knows about its transfer.
type Meta struct {
	Session   string    // the session id
	User      string    // the login name
	Groups    []string  // the user's groups, as the authenticator found them (none in passthrough)
	Verb      string    // RETR, STOR, STOU or APPE
	Direction Direction // which way the bytes go
	Path      string    // the path as the client named it
	// BackendPath is the path sent to the backend (the same as Path: the
	// gateway does not rewrite paths).
	BackendPath string
	// Offset is the REST argument that preceded the command, "" if none:
	// the filter then sees only the part of the file that passed.
	Offset string
}

// ErrPartialTransfer: a filter refuses a resumed (REST) or appended (APPE)
// transfer, whose file it would see only in part. Its veto comes at the
// first Write, before any byte passed: the session leaves a file the
// upload would have added to as it was.
var ErrPartialTransfer = errors.New("filter: a resumed or appended transfer cannot be inspected whole")

// Partial reports whether meta's transfer covers only part of its file: an
// APPE, or a transfer after a REST to a non-zero offset.
func Partial(m Meta) bool {
	return m.Verb == "APPE" || Offset(m) > 0
}

// Verdict is a filter's judgement of a finished transfer.
type Verdict struct {
	// Veto: the client gets Code and Text instead of the backend's final
	// reply (e.g. 550 or 451), and an uploaded file is removed.
	Veto bool
	Code int
	Text string
}

// Filter sees one transfer's bytes.
type Filter interface {
	// Write sees the bytes in order. An error stops the transfer: it is
	// cut as incomplete.
	Write(p []byte) error
	// Finish is called once, after the last byte of a transfer whose data
	// passed completely, before the final reply is sent.
	Finish(ctx context.Context) (Verdict, error)
}

// Chain runs filters in order.
type Chain []Filter

// Write passes p to every filter; the first error stops.
func (c Chain) Write(p []byte) error {
	for _, f := range c {
		if err := f.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// Finish asks every filter in order; the first veto or error wins. An
// error is a veto with 451 (local error in processing), returned with it
// for the log: the client hears no detail.
func (c Chain) Finish(ctx context.Context) (Verdict, error) {
	for _, f := range c {
		v, err := f.Finish(ctx)
		if err != nil {
			return Verdict{Veto: true, Code: 451, Text: "Transfer check failed."}, fmt.Errorf("filter %T: %w", f, err)
		}
		if v.Veto {
			if v.Code == 0 {
				v.Code, v.Text = 550, "Transfer refused."
			}
			return v, nil
		}
	}
	return Verdict{}, nil
}

// Close lets the filters that hold resources (those that are io.Closers:
// a scan's connection to a content scanner) release them. The session
// calls it once per transfer, however the transfer ended: after Finish,
// or instead of it for a cut transfer, possibly while a Write still runs
// on the relay's goroutine (a Closer must allow that).
func (c Chain) Close() {
	for _, f := range c {
		if cl, ok := f.(io.Closer); ok {
			_ = cl.Close()
		}
	}
}
