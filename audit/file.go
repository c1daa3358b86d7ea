package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// File is the JSON-lines file sink: one record per line, each line's Prev
// the hex SHA-256 of the line before it (the first line of a new file
// chains to the last line of the one rotated before it) and Seq its place
// in the chain. Each batch is one write and an fsync; a batch that fails
// is cut off again (the file ends with the last good batch) and the chain
// head stays where it was, so that the trail's next try continues it.
type File struct {
	cfg       FileConfig
	dir, stem string // the rotated files are dir/stem-TIME+ext
	ext       string
	ids       *IDs
	keyID     string

	f          *os.File // nil: to be opened by the next Write
	size       int64
	first      time.Time // the current file's first record (rotation by age); zero: empty
	head       string    // hex SHA-256 of the last line written
	seq        uint64
	checkpoint time.Time // when the last checkpoint was written
	dirty      bool      // records since the last checkpoint
	buf        bytes.Buffer
	now        func() time.Time
}

// OpenFile opens the file sink, continuing the chain of what it finds:
// the last line of the file, or of the newest rotated file when the file
// is new. A last line without its newline (a write cut by a crash, never
// acknowledged) is cut off.
func OpenFile(cfg FileConfig) (*File, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("audit file: %w", err)
	}
	ext := filepath.Ext(cfg.Path)
	f := &File{cfg: cfg, dir: filepath.Dir(cfg.Path), ext: ext, stem: strings.TrimSuffix(filepath.Base(cfg.Path), ext),
		ids: NewIDs(cfg.Instance), now: time.Now}
	f.ids.instance += ".file" // apart from the trail's, with the same instance
	if cfg.CheckpointKey != nil {
		pub, _ := cfg.CheckpointKey.Public().(ed25519.PublicKey)
		f.keyID = KeyID(pub)
	}
	if err := f.open(); err != nil {
		return nil, err
	}
	f.checkpoint = f.now()
	return f, nil
}

// Name is "file".
func (f *File) Name() string { return "file" }

// open opens the file for appending and finds the chain's head.
func (f *File) open() error {
	fh, err := os.OpenFile(f.cfg.Path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit file: %w", err)
	}
	first, last, size, err := readEnds(fh)
	if err != nil {
		fh.Close()
		return fmt.Errorf("audit file %s: %w", f.cfg.Path, err)
	}
	if size > 0 {
		if err := fh.Truncate(size); err != nil { // a torn last line
			fh.Close()
			return fmt.Errorf("audit file %s: %w", f.cfg.Path, err)
		}
	}
	f.f, f.size, f.first = fh, size, time.Time{}
	if first != nil {
		var r struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal(first, &r) == nil {
			f.first = r.Time
		}
		if f.first.IsZero() {
			f.first = f.now()
		}
	}
	if last == nil {
		if rot := f.rotated(); len(rot) > 0 {
			rf, err := os.Open(rot[len(rot)-1])
			if err == nil {
				_, last, _, err = readEnds(rf)
				rf.Close()
			}
			if err != nil {
				f.f.Close()
				f.f = nil
				return fmt.Errorf("audit file: the last rotated file: %w", err)
			}
		}
	}
	f.head, f.seq = "", 0
	if last != nil {
		sum := sha256.Sum256(last)
		f.head = hex.EncodeToString(sum[:])
		var r struct {
			Seq uint64 `json:"seq"`
		}
		_ = json.Unmarshal(last, &r)
		f.seq = r.Seq
	}
	return nil
}

// readEnds returns the first and last complete lines of an open file
// (without their newline; nil when there are none) and the size up to the
// end of the last one.
func readEnds(fh *os.File) (first, last []byte, size int64, err error) {
	st, err := fh.Stat()
	if err != nil {
		return nil, nil, 0, err
	}
	end := st.Size()
	if end == 0 {
		return nil, nil, 0, nil
	}
	n := min(end, 2*MaxLine)
	tail := make([]byte, n)
	if _, err := fh.ReadAt(tail, end-n); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, 0, err
	}
	i := bytes.LastIndexByte(tail, '\n')
	if i < 0 {
		if n < end {
			return nil, nil, 0, fmt.Errorf("a line longer than %d bytes at its end", 2*MaxLine)
		}
		return nil, nil, 0, nil // one torn line: nothing
	}
	size = end - n + int64(i) + 1
	tail = tail[:i]
	last = tail[bytes.LastIndexByte(tail, '\n')+1:]
	head := make([]byte, min(size, MaxLine))
	if _, err := fh.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, 0, err
	}
	if j := bytes.IndexByte(head, '\n'); j >= 0 {
		first = head[:j]
	}
	return first, slices.Clone(last), size, nil
}

// rotated lists the rotated files, oldest first.
func (f *File) rotated() []string {
	m, _ := filepath.Glob(filepath.Join(f.dir, globEscape(f.stem)+"-*"+globEscape(f.ext)))
	var out []string
	for _, p := range m {
		ts := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), f.stem+"-"), f.ext)
		if _, err := time.Parse(rotatedTime, ts); err == nil {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

// Write appends recs, chained, as one write and an fsync; a checkpoint
// follows when one is due. The file is rotated first when it is full or
// old.
func (f *File) Write(ctx context.Context, recs []Record) error {
	if f.f == nil {
		if err := f.open(); err != nil {
			return err
		}
	}
	now := f.now()
	head, seq := f.head, f.seq
	if err := f.encode(recs, now); err != nil {
		return err
	}
	if f.size > 0 && (f.size+int64(f.buf.Len()) > f.cfg.maxSize() || now.Sub(f.first) >= f.cfg.maxAge()) {
		f.head, f.seq = head, seq
		if err := f.rotate(now); err != nil {
			return err
		}
		if err := f.encode(recs, now); err != nil {
			return err
		}
	}
	if f.size == 0 && len(recs) > 0 {
		f.first = recs[0].Time
	}
	return f.commit(head, seq, true)
}

// encode puts recs, chained from the current head, in f.buf, and a
// checkpoint after them when one is due; f.head and f.seq move on.
func (f *File) encode(recs []Record, now time.Time) error {
	f.buf.Reset()
	for _, r := range recs {
		if err := f.line(r); err != nil {
			return err
		}
	}
	if f.cfg.CheckpointKey != nil && now.Sub(f.checkpoint) >= f.cfg.checkpointInterval() {
		return f.line(f.checkpointRecord(now))
	}
	return nil
}

// line appends r as the chain's next line.
func (f *File) line(r Record) error {
	r.Prev = f.head
	r.Seq = f.seq + 1
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("audit file: record %s: %w", r.ID, err)
	}
	sum := sha256.Sum256(b)
	f.head, f.seq = hex.EncodeToString(sum[:]), r.Seq
	f.dirty = r.Kind != KindAudit || r.Audit == nil || r.Audit.Event != "checkpoint"
	if !f.dirty {
		f.checkpoint = r.Time
	}
	f.buf.Write(b)
	f.buf.WriteByte('\n')
	return nil
}

// commit writes f.buf and syncs. On failure the file is cut back to where
// it was and closed: the next Write opens it again and takes the chain's
// head from what the file holds (if the cut failed too, the batch's lines
// that made it stay, and the retried batch repeats them: delivery is at
// least once, the chain unbroken).
func (f *File) commit(head string, seq uint64, sync bool) error {
	if f.buf.Len() == 0 {
		return nil
	}
	n, err := f.f.Write(f.buf.Bytes())
	if err == nil && sync {
		err = f.f.Sync()
	}
	if err != nil {
		f.head, f.seq = head, seq
		if n > 0 {
			_ = f.f.Truncate(f.size)
		}
		f.f.Close()
		f.f = nil
		return fmt.Errorf("audit file %s: %w", f.cfg.Path, err)
	}
	f.size += int64(n)
	return nil
}

// checkpointRecord signs the chain's head.
func (f *File) checkpointRecord(now time.Time) Record {
	r := Record{V: SchemaVersion, ID: f.ids.Next(now), Time: now.UTC(), Kind: KindAudit,
		Audit: &Self{Event: "checkpoint", Sink: f.Name(), Head: f.head, KeyID: f.keyID}}
	sig := ed25519.Sign(f.cfg.CheckpointKey, CheckpointMessage(r.ID, r.Time, f.seq+1, f.head))
	r.Audit.Signature = hex.EncodeToString(sig)
	return r
}

// CheckpointMessage is what a checkpoint's signature covers: its ID, time
// and place in the chain, and the chain's head before it.
func CheckpointMessage(id string, t time.Time, seq uint64, head string) []byte {
	return []byte("ftpsgate audit checkpoint v1\n" + id + "\n" + t.UTC().Format(time.RFC3339Nano) + "\n" +
		strconv.FormatUint(seq, 10) + "\n" + head + "\n")
}

// rotate ends the current file (with a checkpoint when there is a key),
// renames it with the time, starts a new one and applies the retention.
func (f *File) rotate(now time.Time) error {
	if f.cfg.CheckpointKey != nil {
		head, seq := f.head, f.seq
		f.buf.Reset()
		if err := f.line(f.checkpointRecord(now)); err != nil {
			return err
		}
		if err := f.commit(head, seq, true); err != nil {
			return err
		}
	}
	name := filepath.Join(f.dir, f.stem+"-"+now.UTC().Format(rotatedTime)+f.ext)
	if err := os.Rename(f.cfg.Path, name); err != nil {
		return fmt.Errorf("audit file: rotate: %w", err)
	}
	f.f.Close()
	f.f = nil
	fh, err := os.OpenFile(f.cfg.Path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("audit file: rotate: %w", err) // the next Write opens it, chained to the rotated file
	}
	f.f, f.size, f.first = fh, 0, time.Time{}
	if d, err := os.Open(f.dir); err == nil {
		_ = d.Sync() // the rename and the new file
		d.Close()
	}
	f.retain(now)
	return nil
}

// retain removes the rotated files beyond Keep, and those older than KeepFor.
func (f *File) retain(now time.Time) {
	rot := f.rotated()
	for i, p := range rot {
		old := len(rot)-i > f.cfg.keep()
		if f.cfg.KeepFor > 0 {
			ts := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), f.stem+"-"), f.ext)
			if t, err := time.Parse(rotatedTime, ts); err == nil && now.Sub(t) > f.cfg.KeepFor {
				old = true
			}
		}
		if old {
			_ = os.Remove(p)
		}
	}
}

// Ready checks that the file's directory can be written now (a file
// created there and removed), for audit.required: a sink whose directory
// went read-only, or away, cannot rotate, and will not be written after a
// restart.
func (f *File) Ready() error {
	p, err := os.CreateTemp(f.dir, "."+f.stem+".probe-*")
	if err != nil {
		return fmt.Errorf("audit file: directory not writable: %w", err)
	}
	p.Close()
	return os.Remove(p.Name())
}

// Close writes a checkpoint when records came after the last one, and
// closes the file.
func (f *File) Close() error {
	if f.f == nil {
		return nil
	}
	var err error
	if f.cfg.CheckpointKey != nil && f.dirty {
		head, seq := f.head, f.seq
		f.buf.Reset()
		if err = f.line(f.checkpointRecord(f.now())); err == nil {
			err = f.commit(head, seq, true)
		}
	}
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	f.f = nil
	return err
}
