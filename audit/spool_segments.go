package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// recover reads the segments and the cursor a former run left, cuts a
// torn last line, and starts a new segment to write.
func (s *Spool) recover() error {
	ents, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), spoolSegSuffix)
		if !ok {
			continue
		}
		num, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		s.segs = append(s.segs, spoolSeg{num: num, size: fi.Size()})
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].num < s.segs[j].num })
	if n := len(s.segs); n > 0 {
		// A crash in the middle of a write leaves part of a line: cut it.
		last := &s.segs[n-1]
		size, err := cutTorn(s.segPath(last.num), last.size)
		if err != nil {
			return err
		}
		last.size = size
	}
	if b, err := os.ReadFile(filepath.Join(s.cfg.Dir, spoolCursor)); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			s.cur.num, _ = strconv.ParseUint(f[0], 10, 64)
			s.cur.off, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	// Segments wholly before the cursor were delivered.
	for len(s.segs) > 0 && s.segs[0].num < s.cur.num {
		if err := os.Remove(s.segPath(s.segs[0].num)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		s.segs = s.segs[1:]
	}
	if len(s.segs) == 0 || s.segs[0].num != s.cur.num || s.cur.off < 0 || s.cur.off > s.segs[0].size {
		s.cur.off = 0
		if len(s.segs) > 0 {
			s.cur.num = s.segs[0].num
		}
	}
	next := s.cur.num + 1
	if n := len(s.segs); n > 0 {
		next = s.segs[n-1].num + 1
	}
	if err := s.newSegment(next); err != nil {
		return err
	}
	if len(s.segs) == 1 {
		s.cur = spoolPos{num: next}
	}
	for _, g := range s.segs {
		s.total += g.size
	}
	s.total -= s.cur.off
	return nil
}

// cutTorn truncates the file to its last newline.
func cutTorn(path string, size int64) (int64, error) {
	if size == 0 {
		return 0, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return 0, err
	}
	keep := int64(strings.LastIndexByte(string(b), '\n') + 1)
	if keep == int64(len(b)) {
		return keep, nil
	}
	if err := f.Truncate(keep); err != nil {
		return 0, err
	}
	return keep, f.Sync()
}

func (s *Spool) segPath(num uint64) string {
	return filepath.Join(s.cfg.Dir, fmt.Sprintf("%020d%s", num, spoolSegSuffix))
}

// newSegment creates segment num and makes it the one written.
func (s *Spool) newSegment(num uint64) error {
	f, err := os.OpenFile(s.segPath(num), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if s.w != nil {
		s.w.Close()
	}
	s.w = f
	s.segs = append(s.segs, spoolSeg{num: num})
	syncDir(s.cfg.Dir)
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
