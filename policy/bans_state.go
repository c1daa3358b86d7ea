package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// EventSaveError is the BanEvent kind that reports a failed write of the
// state file (Reason holds the error). The bans stay in force in memory.
const EventSaveError = "save_error"

// minSaveInterval spaces the writes of the state file: the first change
// after a quiet second is written at once, later ones at most once a second
// (so a flood of bans costs one write a second, not one each).
const minSaveInterval = time.Second

// maxStateSize bounds what load reads.
const maxStateSize = 64 << 20

const stateVersion = 1

// stateFile is the JSON of BanConfig.StateFile.
type stateFile struct {
	Version   int             `json:"version"`
	Bans      []Ban           `json:"bans"`
	Offenders []stateOffender `json:"offenders,omitempty"`
}

type stateOffender struct {
	IP       netip.Addr `json:"ip"`
	Offences int        `json:"offences"`
	Until    time.Time  `json:"until"` // when the last ban ended
}

// persister writes the state file after changes, coalescing them.
type persister struct {
	d *Defender

	mu     sync.Mutex // guards timer, last, closed
	timer  *time.Timer
	last   time.Time // wall clock of the last write
	closed bool

	saveMu   sync.Mutex // one write at a time
	savedGen uint64
}

// request asks for the state to be written: now, or after minSaveInterval
// since the last write.
func (p *persister) request() {
	if p.d.cfg.StateFile == "" {
		return
	}
	p.mu.Lock()
	if p.closed || p.timer != nil {
		p.mu.Unlock()
		return
	}
	if wait := minSaveInterval - time.Since(p.last); wait > 0 {
		p.timer = time.AfterFunc(wait, func() {
			p.mu.Lock()
			p.timer = nil
			p.mu.Unlock()
			p.saveOrReport()
		})
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.saveOrReport()
}

func (p *persister) saveOrReport() {
	if err := p.d.Save(); err != nil {
		p.d.emit(BanEvent{Kind: EventSaveError, Reason: err.Error()})
	}
}

func (p *persister) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
}

// Save writes the state file atomically (a temporary file in the same
// directory, fsync, rename, fsync of the directory) when something changed
// since the last write. Without a StateFile it does nothing. Bans and unbans
// call it by themselves (coalesced to one write a second); Close calls it.
func (d *Defender) Save() error {
	if d == nil || d.cfg.StateFile == "" {
		return nil
	}
	p := &d.persist
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	d.mu.RLock()
	gen := d.gen
	if gen == p.savedGen {
		d.mu.RUnlock()
		return nil
	}
	st := stateFile{Version: stateVersion, Bans: make([]Ban, 0, len(d.bans))}
	for _, b := range d.bans {
		st.Bans = append(st.Bans, *b)
	}
	for ip, o := range d.past {
		st.Offenders = append(st.Offenders, stateOffender{IP: ip, Offences: o.offences, Until: o.until})
	}
	d.mu.RUnlock()
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("policy: bans state: %w", err)
	}
	err = writeFileAtomic(d.cfg.StateFile, data, 0o600)
	p.mu.Lock()
	p.last = time.Now()
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("policy: bans state: %w", err)
	}
	p.savedGen = gen
	return nil
}

// writeFileAtomic replaces path with data so that a reader (or a restart
// after a crash) sees the old content or the new, never a part.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	// Make the rename itself durable.
	if df, derr := os.Open(dir); derr == nil {
		_ = df.Sync()
		_ = df.Close()
	}
	return nil
}

// load reads the state file, if there is one, into d (not yet shared).
func (d *Defender) load() error {
	f, err := os.Open(d.cfg.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return err
	}
	if len(data) > maxStateSize {
		return fmt.Errorf("larger than %d bytes", maxStateSize)
	}
	changed, err := d.restore(data, d.time())
	if err != nil {
		return err
	}
	if changed {
		d.gen++ // rewrite without what was dropped at the next save
	}
	return nil
}

// restore parses a state file into d's tables at now: bans that ended are
// dropped (their offence counts kept), allowlisted addresses are dropped,
// offenders forgotten after MaxDuration are dropped. changed reports that
// something was dropped.
func (d *Defender) restore(data []byte, now time.Time) (changed bool, err error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return false, nil // an empty file is an empty state
	}
	var st stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return false, fmt.Errorf("not a bans state file: %w", err)
	}
	if st.Version != stateVersion {
		return false, fmt.Errorf("state version %d is not supported (want %d)", st.Version, stateVersion)
	}
	for _, o := range st.Offenders {
		ip := normalize(o.IP)
		if !ip.IsValid() || o.Offences <= 0 || d.allowed(ip) || now.Sub(o.Until) > d.cfg.maxDuration() {
			changed = true
			continue
		}
		d.past[ip] = pastOffender{offences: o.Offences, until: o.Until}
	}
	for _, b := range st.Bans {
		ip := normalize(b.IP)
		if !ip.IsValid() || b.Offences < 0 || d.allowed(ip) {
			changed = true
			continue
		}
		b.IP = ip
		if !now.Before(b.Until) {
			changed = true
			if b.Offences > 0 && now.Sub(b.Until) <= d.cfg.maxDuration() {
				if p, ok := d.past[ip]; !ok || p.offences < b.Offences {
					d.past[ip] = pastOffender{offences: b.Offences, until: b.Until}
				}
			}
			continue
		}
		delete(d.past, ip)
		d.bans[ip] = &b
	}
	return changed, nil
}
