package dlp

import (
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"strings"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/filter"
)

// ErrBlocked: a transfer was blocked by the content policy.
var ErrBlocked = errors.New("dlp: transfer blocked by content policy")

// The replies of a blocked transfer: an upload's (Finish) and a
// download's (cut while it streams).
const (
	StatusUploadBlocked   = 550
	StatusDownloadBlocked = 426
)

// Finding is a detector whose count passed its threshold in one transfer.
// It never holds the matched data.
type Finding struct {
	Meta     filter.Meta
	Detector string // cards, ibans, ssns, emails, keywords, pattern:NAME, file_type:TYPE, gzip, partial
	Count    int
	Action   Action
	Ref      string // the reference id the client was given (block); shared by a transfer's findings
}

// Policy is a validated Config, compiled once and shared by the transfers.
type Policy struct {
	cfg     Config
	kw      *keywords
	pats    []*regexp.Regexp
	deny    map[string]bool
	report  func(Finding)
	scanned func(m filter.Meta, n int64)
}

// OnScanned sets fn to hear, at the end of each inspected transfer, its
// bytes (as they streamed: compressed for a gzip upload). Set it before
// the first Filter.
func (p *Policy) OnScanned(fn func(m filter.Meta, n int64)) { p.scanned = fn }

// New compiles cfg; report (nil: none) hears every finding, alerts and
// blocks, on the transfer's goroutine.
func New(cfg Config, report func(Finding)) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Policy{cfg: cfg, report: report, deny: map[string]bool{}}
	if cfg.Keywords.Enabled {
		p.kw = newKeywords(cfg.KeywordList)
	}
	for _, pt := range cfg.Patterns {
		p.pats = append(p.pats, regexp.MustCompile(pt.Regexp))
	}
	for _, t := range cfg.DenyTypes {
		t = strings.ToLower(t)
		if g := typeGroups[t]; g != nil {
			for _, x := range g {
				p.deny[x] = true
			}
		} else {
			p.deny[t] = true
		}
	}
	return p, nil
}

// Filter returns the inspection filter of a transfer, nil when the policy
// is off or does not inspect the transfer's direction.
func (p *Policy) Filter(m filter.Meta) filter.Filter {
	if p == nil || !p.cfg.Enabled {
		return nil
	}
	switch {
	case p.cfg.Directions == Uploads && m.Direction != filter.Upload,
		p.cfg.Directions == Downloads && m.Direction != filter.Download:
		return nil
	}
	f := &Filter{p: p, meta: m, sc: newScanner(p)}
	if m.Direction == filter.Download {
		f.blockEarly = p.blocks()
	}
	f.refusePartial = !p.cfg.ScanPartial && filter.Partial(m) && p.blocks()
	return f
}

// blocks reports whether any counting rule blocks (a download is then
// checked after each write).
func (p *Policy) blocks() bool {
	for _, r := range p.cfg.rules() {
		if r.Enabled && r.Action == Block {
			return true
		}
	}
	for _, pt := range p.cfg.Patterns {
		if pt.Action == Block {
			return true
		}
	}
	return len(p.deny) > 0 && p.cfg.TypeAction == Block
}

// Filter inspects one transfer.
type Filter struct {
	p          *Policy
	meta       filter.Meta
	sc         *scanner
	head       []byte // the first two bytes, until the gzip decision
	decided    bool
	z          *inflater
	blockEarly bool
	// refusePartial: a resumed or appended transfer, vetoed at its first
	// byte (Config.ScanPartial).
	refusePartial bool
	blocked       *filter.VetoError
	done          bool
	n             int64 // the bytes written
	counted       bool  // n was reported
}

// Write inspects p. A download whose counts pass a blocking threshold is
// cut (a *filter.VetoError, 426); an upload is judged in Finish.
func (f *Filter) Write(p []byte) error {
	if f.blocked != nil {
		return f.blocked
	}
	if f.refusePartial {
		f.blocked = f.blockPartial()
		return f.blocked
	}
	f.n += int64(len(p))
	if !f.decided {
		n := min(len(p), 2-len(f.head))
		f.head = append(f.head, p[:n]...)
		if len(f.head) < 2 {
			return nil
		}
		f.decide()
		f.feed(f.head)
		p = p[n:]
	}
	f.feed(p)
	if f.blockEarly {
		if fs := f.findings(); hasBlock(fs) {
			f.blocked = f.block(fs)
			return f.blocked
		}
	}
	return nil
}

// decide starts the decompressor of a gzip upload.
func (f *Filter) decide() {
	f.decided = true
	if f.p.cfg.Gzip && f.meta.Direction == filter.Upload && f.head[0] == 0x1f && f.head[1] == 0x8b {
		f.z = newInflater(f.p, f.p.cfg.GzipMaxBytes)
		// A transfer cut before Finish leaves the decompressor waiting:
		// end it when the filter is dropped.
		runtime.AddCleanup(f, func(pw *io.PipeWriter) { pw.CloseWithError(errAbandoned) }, f.z.pw)
	}
}

func (f *Filter) feed(p []byte) {
	if len(p) == 0 {
		return
	}
	if f.z != nil {
		f.z.raw.write(p)
		_, _ = f.z.pw.Write(p) // an error: the decompressor stopped (its state says why)
		return
	}
	f.sc.write(p)
}

// Finish reports the transfer's findings and vetoes it (550 for an upload)
// when one blocks.
func (f *Filter) Finish(context.Context) (filter.Verdict, error) {
	if f.blocked != nil {
		return f.blocked.Verdict, nil
	}
	if f.done {
		return filter.Verdict{}, nil
	}
	f.done = true
	f.reportScanned()
	if !f.decided {
		f.decided = true
		f.feed(f.head)
	}
	if f.z != nil {
		f.z.close()
	}
	f.sc.finish()
	fs := f.findings()
	if hasBlock(fs) {
		f.blocked = f.block(fs)
		return f.blocked.Verdict, nil
	}
	f.send(fs, "")
	return filter.Verdict{}, nil
}

// Counts returns the counts so far (after Finish: the transfer's).
func (f *Filter) Counts() Counts {
	c := f.sc.c
	if f.z != nil {
		c = f.z.sc.c
	}
	c.Patterns = append([]int(nil), c.Patterns...)
	return c
}

func (f *Filter) findings() []Finding {
	var fs []Finding
	c := &f.sc.c
	if f.z != nil {
		c = &f.z.sc.c
		if f.z.failed() {
			fs = append(fs, Finding{Detector: "gzip", Count: 1, Action: f.p.cfg.GzipAction})
		}
		if t := f.z.raw.c.FileType; f.p.deny[t] {
			fs = append(fs, Finding{Detector: "file_type:" + t, Count: 1, Action: f.p.cfg.TypeAction})
		}
	}
	for _, r := range f.p.cfg.rules() {
		if n := r.count(c); r.Enabled && n > r.Threshold {
			fs = append(fs, Finding{Detector: r.name, Count: n, Action: r.Action})
		}
	}
	for i, pt := range f.p.cfg.Patterns {
		if n := c.Patterns[i]; n > pt.Threshold {
			fs = append(fs, Finding{Detector: "pattern:" + pt.Name, Count: n, Action: pt.Action})
		}
	}
	if t := c.FileType; f.p.deny[t] {
		fs = append(fs, Finding{Detector: "file_type:" + t, Count: 1, Action: f.p.cfg.TypeAction})
	}
	return fs
}

func hasBlock(fs []Finding) bool {
	for _, x := range fs {
		if x.Action == Block {
			return true
		}
	}
	return false
}

// reportScanned reports the bytes inspected, once: at Finish or at a cut.
func (f *Filter) reportScanned() {
	if f.p.scanned != nil && !f.counted {
		f.counted = true
		f.p.scanned(f.meta, f.n)
	}
}

// block reports fs under a fresh reference id and returns the veto.
func (f *Filter) block(fs []Finding) *filter.VetoError {
	f.reportScanned()
	ref := newRef()
	f.send(fs, ref)
	code := StatusUploadBlocked
	if f.meta.Direction == filter.Download {
		code = StatusDownloadBlocked
	}
	var names []string
	for _, x := range fs {
		if x.Action == Block {
			names = append(names, fmt.Sprintf("%s=%d", x.Detector, x.Count))
		}
	}
	return &filter.VetoError{
		Verdict: filter.Verdict{Veto: true, Code: code, Text: fmt.Sprintf("Transfer blocked by content policy (ref %s).", ref)},
		Err:     fmt.Errorf("%w (ref %s): %s", ErrBlocked, ref, strings.Join(names, ", ")),
	}
}

// blockPartial refuses a resumed or appended transfer before its first
// byte passes: the "partial" finding, with a fresh reference id.
func (f *Filter) blockPartial() *filter.VetoError {
	ref := newRef()
	f.send([]Finding{{Detector: "partial", Count: 1, Action: Block}}, ref)
	code := StatusUploadBlocked
	if f.meta.Direction == filter.Download {
		code = StatusDownloadBlocked
	}
	return &filter.VetoError{
		Verdict: filter.Verdict{Veto: true, Code: code,
			Text: fmt.Sprintf("Transfer blocked: a resumed or appended transfer cannot be inspected (ref %s).", ref)},
		Err: fmt.Errorf("%w (ref %s): %w", ErrBlocked, ref, filter.ErrPartialTransfer),
	}
}

func (f *Filter) send(fs []Finding, ref string) {
	if f.p.report == nil {
		return
	}
	for _, x := range fs {
		x.Meta, x.Ref = f.meta, ref
		f.p.report(x)
	}
}

// EmitTo sends the findings (events.Inspection) and the scanned bytes
// (events.Inspected) to sink, in place of New's report. Set it before the
// first Filter.
func (p *Policy) EmitTo(sink events.Sink) {
	session := func(m filter.Meta) events.Session { return events.Session{ID: m.Session, User: m.User} }
	p.report = func(f Finding) {
		sink.Emit(events.Inspection{Session: session(f.Meta), Path: f.Meta.Path, Upload: f.Meta.Direction == filter.Upload,
			Detector: f.Detector, Count: f.Count, Action: f.Action.String(), Ref: f.Ref})
	}
	p.scanned = func(m filter.Meta, n int64) {
		sink.Emit(events.Inspected{Session: session(m), Upload: m.Direction == filter.Upload, Bytes: n})
	}
}

// Hook is the proxy's per-transfer filter hook (proxy.Config.Filters).
func (p *Policy) Hook(m filter.Meta) []filter.Filter {
	if f := p.Filter(m); f != nil {
		return []filter.Filter{f}
	}
	return nil
}

// newRef returns a reference id: 12 hex digits.
func newRef() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var (
	errAbandoned = errors.New("dlp: transfer abandoned")
	errBound     = errors.New("dlp: decompressed size bound passed")
)

// inflater decompresses a gzip upload on a goroutine of its own, fed
// through a pipe: each write waits until the decompressor has taken its
// bytes, so the decompressed data held at once is one read buffer.
type inflater struct {
	pw   *io.PipeWriter
	sc   *scanner // the decompressed stream's; read after done
	raw  *scanner // the compressed stream's file type only
	done chan struct{}
	err  error // why decompressing stopped early (errBound: the bound)
}

func newInflater(p *Policy, bound int64) *inflater {
	pr, pw := io.Pipe()
	z := &inflater{pw: pw, sc: newScanner(p), raw: &scanner{atStart: true}, done: make(chan struct{})}
	go z.run(pr, bound)
	return z
}

func (z *inflater) run(pr *io.PipeReader, bound int64) {
	defer close(z.done)
	zr, err := gzip.NewReader(pr)
	if err != nil {
		z.err = err
		pr.CloseWithError(err)
		return
	}
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := zr.Read(buf)
		if k > 0 {
			if int64(k) > bound-n {
				z.sc.write(buf[:bound-n])
				z.err = errBound
				pr.CloseWithError(errBound)
				return
			}
			n += int64(k)
			z.sc.write(buf[:k])
		}
		if err == io.EOF {
			pr.CloseWithError(io.EOF)
			return
		}
		if err != nil {
			z.err = err
			pr.CloseWithError(err)
			return
		}
	}
}

func (z *inflater) close() {
	_ = z.pw.Close()
	<-z.done
	z.sc.finish()
	z.raw.finish()
}

// failed: the stream passed the bound or did not decompress.
func (z *inflater) failed() bool { return z.err != nil }
