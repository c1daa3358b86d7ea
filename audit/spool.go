package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Spool wraps a remote Sink: Write appends the batch to a bounded on-disk
// spool (segment files of JSON lines in Dir, fsynced) and returns; a
// goroutine delivers from the spool to the inner sink in order, batch by
// batch, with exponential backoff while it fails, and deletes what it
// delivered. Where delivery stands is kept in Dir/cursor, so a spool left
// by a stopped gateway is delivered after its restart (a batch delivered
// just before a crash may be delivered again). Dir is locked (flock) while
// open.
type Spool struct {
	cfg   SpoolConfig
	inner Sink
	hooks SpoolHooks

	mu      sync.Mutex
	segs    []spoolSeg // oldest first; the last is the one written
	w       *os.File   // the last segment
	cur     spoolPos   // the first record not yet delivered
	total   int64      // bytes from cur to the end
	closed  bool
	full    bool // a Write was refused for want of room; cleared by a delivery
	notify  chan struct{}
	stop    chan struct{}
	done    chan struct{}
	lock    *os.File
	pending []Record // read, not yet delivered
	pendEnd spoolPos // where the spool stands once pending is delivered
}

type spoolSeg struct {
	num  uint64
	size int64
}

type spoolPos struct {
	num uint64
	off int64
}

const (
	spoolSegSuffix = ".seg"
	spoolCursor    = "cursor"
)

// NewSpool opens (or creates) the spool in cfg.Dir, delivers what an
// earlier run left there first, and starts delivering to inner.
func NewSpool(cfg SpoolConfig, inner Sink, hooks SpoolHooks) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: spool: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(cfg.Dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: spool: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("audit: spool %s: in use by another process: %w", cfg.Dir, err)
	}
	s := &Spool{cfg: cfg, inner: inner, hooks: hooks, lock: lock,
		notify: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.recover(); err != nil {
		lock.Close()
		return nil, fmt.Errorf("audit: spool %s: %w", cfg.Dir, err)
	}
	s.queued()
	go s.deliver()
	return s, nil
}

// Name is the inner sink's name.
func (s *Spool) Name() string { return s.inner.Name() }

// Write appends recs to the spool and syncs it; ErrSpoolFull (wrapped)
// when they do not fit in max_bytes, and then none of them is kept.
func (s *Spool) Write(_ context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	var buf []byte
	for i := range recs {
		b, err := json.Marshal(&recs[i])
		if err != nil {
			return fmt.Errorf("audit: spool: record %s: %w", recs[i].ID, err)
		}
		buf = append(append(buf, b...), '\n')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("audit: spool %s: %w", s.cfg.Dir, ErrSpoolClosed)
	}
	if s.total+int64(len(buf)) > s.cfg.maxBytes() {
		s.full = true
		return fmt.Errorf("audit: spool %s: %d records (%d bytes) refused, %d of %d bytes waiting: %w",
			s.cfg.Dir, len(recs), len(buf), s.total, s.cfg.maxBytes(), ErrSpoolFull)
	}
	last := &s.segs[len(s.segs)-1]
	if last.size > 0 && last.size+int64(len(buf)) > s.cfg.segmentBytes() {
		if err := s.newSegment(last.num + 1); err != nil {
			return fmt.Errorf("audit: spool: %w", err)
		}
		last = &s.segs[len(s.segs)-1]
	}
	if _, err := s.w.Write(buf); err != nil {
		_ = s.w.Truncate(last.size)
		return fmt.Errorf("audit: spool: %w", err)
	}
	if err := s.w.Sync(); err != nil {
		_ = s.w.Truncate(last.size)
		return fmt.Errorf("audit: spool: %w", err)
	}
	last.size += int64(len(buf))
	s.total += int64(len(buf))
	s.queuedLocked()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

func (s *Spool) queued() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queuedLocked()
}

func (s *Spool) queuedLocked() {
	if s.hooks.Queued != nil {
		s.hooks.Queued(s.total)
	}
}

// Ready returns nil while the spool takes records: ErrSpoolClosed after
// Close, ErrSpoolFull after a Write was refused for want of room and
// until a delivery makes some (the trail's audit.required gate asks it).
func (s *Spool) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return fmt.Errorf("audit: spool %s: %w", s.cfg.Dir, ErrSpoolClosed)
	case s.full:
		return fmt.Errorf("audit: spool %s: %d of %d bytes waiting: %w", s.cfg.Dir, s.total, s.cfg.maxBytes(), ErrSpoolFull)
	}
	return nil
}

// Queued is the bytes waiting in the spool.
func (s *Spool) Queued() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// deliver is the delivery goroutine.
func (s *Spool) deliver() {
	defer close(s.done)
	var drainAt time.Time // set once Close asked to stop
	draining := func() bool {
		if drainAt.IsZero() {
			select {
			case <-s.stop:
				drainAt = time.Now().Add(s.cfg.closeTimeout())
			default:
				return false
			}
		}
		return true
	}
	up := true
	backoff := time.Duration(0)
	for {
		if s.pending == nil {
			more, err := s.readBatch()
			if err != nil {
				// The spool cannot be read: say so, and try again after
				// the backoff.
				if up {
					up = false
					s.up(false, err)
				}
				if draining() {
					return
				}
				backoff = min(max(2*backoff, s.cfg.backoffMin()), s.cfg.backoffMax())
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-s.stop:
					t.Stop()
				}
				continue
			}
			if !more {
				if draining() {
					return
				}
				select {
				case <-s.notify:
				case <-s.stop:
				}
				continue
			}
		}
		if len(s.pending) > 0 {
			deadline := time.Now().Add(s.cfg.writeTimeout())
			if draining() {
				if !time.Now().Before(drainAt) {
					return
				}
				deadline = drainAt
			}
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			err := s.inner.Write(ctx, s.pending)
			cancel()
			if err != nil {
				if up {
					up = false
					s.up(false, err)
				}
				backoff = min(max(2*backoff, s.cfg.backoffMin()), s.cfg.backoffMax())
				wait := backoff
				stop := s.stop
				if draining() {
					wait = min(wait, time.Until(drainAt))
					stop = nil
				}
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-stop:
					t.Stop()
				}
				continue
			}
			if !up {
				up = true
				s.up(true, nil)
			}
			backoff = 0
			if s.hooks.Delivered != nil {
				s.hooks.Delivered(len(s.pending))
			}
		}
		s.advance()
	}
}

func (s *Spool) up(up bool, err error) {
	if s.hooks.Up != nil {
		s.hooks.Up(up, err)
	}
}

// readBatch reads up to batch records from the cursor into pending;
// false when there is nothing to deliver. Fully delivered segments other
// than the one written are removed on the way.
func (s *Spool) readBatch() (bool, error) {
	s.mu.Lock()
	for {
		first := s.segs[0]
		if s.cur.num != first.num {
			s.cur = spoolPos{num: first.num}
		}
		if s.cur.off < first.size {
			break
		}
		if len(s.segs) == 1 {
			s.mu.Unlock()
			return false, nil
		}
		if err := os.Remove(s.segPath(first.num)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.mu.Unlock()
			return false, err
		}
		s.segs = s.segs[1:]
		s.cur = spoolPos{num: s.segs[0].num}
		if err := s.saveCursor(); err != nil {
			s.mu.Unlock()
			return false, err
		}
	}
	pos, size := s.cur, s.segs[0].size
	s.mu.Unlock()

	f, err := os.Open(s.segPath(pos.num))
	if err != nil {
		return false, err
	}
	defer f.Close()
	if _, err := f.Seek(pos.off, io.SeekStart); err != nil {
		return false, err
	}
	br := bufio.NewReader(io.LimitReader(f, size-pos.off))
	recs := make([]Record, 0, s.cfg.batch())
	end := pos
	for len(recs) < s.cfg.batch() {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			break
		}
		end.off += int64(len(line))
		var r Record
		if jerr := json.Unmarshal(line, &r); jerr != nil {
			if s.hooks.Dropped != nil {
				s.hooks.Dropped(1, fmt.Errorf("audit: spool %s: unreadable line at %d: %w", s.segPath(pos.num), end.off-int64(len(line)), jerr))
			}
			continue
		}
		recs = append(recs, r)
	}
	s.pending, s.pendEnd = recs, end
	return true, nil
}

// advance moves the cursor past pending.
func (s *Spool) advance() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total -= s.pendEnd.off - s.cur.off
	s.cur = s.pendEnd
	s.pending = nil
	s.full = false
	_ = s.saveCursor()
	s.queuedLocked()
}

// saveCursor writes the cursor (write, sync, rename).
func (s *Spool) saveCursor() error {
	tmp := filepath.Join(s.cfg.Dir, spoolCursor+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%d %d\n", s.cur.num, s.cur.off)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.cfg.Dir, spoolCursor))
}

// Close refuses new records, keeps delivering for up to close_timeout,
// then stops (what is left stays in the spool for the next start) and
// closes the inner sink.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	err := s.inner.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		s.w.Close()
	}
	// Remove the last segment when all of it was delivered.
	if len(s.segs) == 1 && s.cur.num == s.segs[0].num && s.cur.off == s.segs[0].size {
		_ = os.Remove(s.segPath(s.segs[0].num))
	}
	s.lock.Close()
	return err
}
