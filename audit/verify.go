package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// entry is one line of an audit file as the verifier sees it.
type entry struct {
	file string
	line int
	hash string // hex SHA-256 of the line
	id   string
	kind string
	time time.Time
	prev string
	seq  uint64
	self *Self
}

// errNotRecord: a line that is not a record of ours.
var errNotRecord = errors.New("not an audit record")

// parseLine reads one line (without its newline) of an audit file.
func parseLine(b []byte) (entry, error) {
	var r struct {
		V    int       `json:"v"`
		ID   string    `json:"id"`
		Time time.Time `json:"time"`
		Kind string    `json:"kind"`
		Prev string    `json:"prev"`
		Seq  uint64    `json:"seq"`
		Self *Self     `json:"audit"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return entry{}, fmt.Errorf("%w: %v", errNotRecord, err)
	}
	if r.V < 1 || r.ID == "" || r.Kind == "" {
		return entry{}, fmt.Errorf("%w: no v, id or kind", errNotRecord)
	}
	if r.Prev != "" {
		if p, err := hex.DecodeString(r.Prev); err != nil || len(p) != sha256.Size {
			return entry{}, fmt.Errorf("%w: prev is not a SHA-256", errNotRecord)
		}
	}
	sum := sha256.Sum256(b)
	return entry{hash: hex.EncodeToString(sum[:]), id: r.ID, kind: r.Kind, time: r.Time, prev: r.Prev, seq: r.Seq, self: r.Self}, nil
}

// Problem is the first thing Verify found wrong: where (file and line) and
// what (altered, removed, inserted, a bad checkpoint).
type Problem struct {
	File string
	Line int
	ID   string // the record's ID, when its line is a record
	What string
}

func (p *Problem) Error() string {
	s := fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.What)
	if p.ID != "" {
		s += " (the line holds record " + p.ID + ")"
	}
	return s
}

// Verified is what Verify checked.
type Verified struct {
	Files, Records int
	Checkpoints    int    // checkpoint records seen
	Signed         int    // checkpoints whose signature was verified (a key was given)
	Head           string // the hex SHA-256 of the last line: the chain's head
	// StartsAfter is the first line's Prev: not empty when the chain
	// started in a file not given (rotated away).
	StartsAfter string
	// Unsigned is the records after the last checkpoint: a truncation or
	// an edit there only a later checkpoint, or a copy of Head kept
	// elsewhere, can show.
	Unsigned int
}

// Verify checks the hash chain through files, in the order given (the
// rotated files oldest first, then the current one), and, when pub is not
// nil, the signature of every checkpoint. It returns a *Problem naming the
// first record that was altered, removed or inserted (by file and line),
// or another error when a file cannot be read.
func Verify(files []string, pub ed25519.PublicKey) (Verified, error) {
	var v Verified
	next, closeAll := readEntries(files)
	defer closeAll()
	var p2, p1 *entry
	for {
		e, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return v, err
		}
		v.Records++
		v.Unsigned++
		switch {
		case p1 == nil:
			v.StartsAfter = e.prev
		case e.prev != p1.hash:
			la, err := next()
			if err != nil && err != io.EOF {
				var p *Problem
				if !errors.As(err, &p) {
					return v, err
				}
				la = nil // an unreadable next line: no lookahead
			}
			return v, classify(p2, p1, e, la)
		}
		if e.kind == KindAudit && e.self != nil && e.self.Event == "checkpoint" {
			v.Checkpoints++
			if err := checkCheckpoint(e, pub); err != nil {
				return v, err
			}
			if pub != nil {
				v.Signed++
			}
			v.Unsigned = 0
		}
		p2, p1 = p1, e
	}
	v.Files = len(files)
	if p1 != nil {
		v.Head = p1.hash
	}
	return v, nil
}

// classify names the break between p1 and e (e.prev is not p1's hash),
// with the two lines around it: p2 before p1, la after e (nil: none).
func classify(p2, p1, e, la *entry) error {
	switch {
	case la != nil && la.prev == p1.hash:
		return &Problem{File: e.file, Line: e.line, ID: e.id, What: "record inserted (the next line chains to the one before it)"}
	case p2 != nil && e.prev == p2.hash:
		return &Problem{File: p1.file, Line: p1.line, ID: p1.id, What: "record inserted (the next line chains to the one before it)"}
	case p1.seq != 0 && e.seq > p1.seq+1:
		what := fmt.Sprintf("record removed before this line (seq %d", p1.seq+1)
		if e.seq > p1.seq+2 {
			what += fmt.Sprintf(" to %d", e.seq-1)
		}
		return &Problem{File: e.file, Line: e.line, ID: e.id, What: what + " missing)"}
	}
	return &Problem{File: p1.file, Line: p1.line, ID: p1.id, What: "record altered (the next line's prev does not match it)"}
}

// checkCheckpoint checks that a checkpoint signs the chain's head before
// it, with pub's key (nil: the signature is not checked).
func checkCheckpoint(e *entry, pub ed25519.PublicKey) error {
	s := e.self
	if s.Head != e.prev {
		return &Problem{File: e.file, Line: e.line, ID: e.id, What: "checkpoint altered: its head is not the chain's"}
	}
	if pub == nil {
		return nil
	}
	if s.KeyID != KeyID(pub) {
		return &Problem{File: e.file, Line: e.line, ID: e.id, What: fmt.Sprintf("checkpoint signed with another key (key_id %s, the key given is %s)", s.KeyID, KeyID(pub))}
	}
	sig, err := hex.DecodeString(s.Signature)
	if err != nil || !ed25519.Verify(pub, CheckpointMessage(e.id, e.time, e.seq, s.Head), sig) {
		return &Problem{File: e.file, Line: e.line, ID: e.id, What: "checkpoint signature does not verify: altered or forged"}
	}
	return nil
}

// readEntries reads the lines of files, in order, one at a time (each
// bounded by MaxLine); a line that is not a record is a *Problem.
func readEntries(files []string) (next func() (*entry, error), closeAll func()) {
	var (
		i    = -1
		fh   *os.File
		br   *bufio.Reader
		line int
	)
	closeAll = func() {
		if fh != nil {
			fh.Close()
			fh = nil
		}
	}
	next = func() (*entry, error) {
		for {
			if br == nil {
				closeAll()
				i++
				if i >= len(files) {
					return nil, io.EOF
				}
				var err error
				if fh, err = os.Open(files[i]); err != nil {
					return nil, err
				}
				br, line = bufio.NewReaderSize(fh, 64<<10), 0
			}
			b, err := readLine(br)
			if err == io.EOF {
				br = nil
				continue
			}
			line++
			if err != nil {
				br = nil // one problem per file is enough
				return nil, &Problem{File: files[i], Line: line, What: "record altered: " + err.Error()}
			}
			e, err := parseLine(b)
			if err != nil {
				return nil, &Problem{File: files[i], Line: line, What: "record altered: " + err.Error()}
			}
			e.file, e.line = files[i], line
			return &e, nil
		}
	}
	return next, closeAll
}

// readLine reads one line of at most MaxLine bytes, without its newline.
// A last line without one is an error (a torn write).
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > MaxLine+1 {
			return nil, fmt.Errorf("line longer than %d bytes", MaxLine)
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(out, []byte("\n")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(out) == 0:
			return nil, io.EOF
		case err == io.EOF:
			return nil, errors.New("last line has no newline (a torn write)")
		default:
			return nil, err
		}
	}
}
