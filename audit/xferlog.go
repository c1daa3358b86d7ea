package audit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// XferlogConfig configures the xferlog sink (keys under audit.xferlog).
type XferlogConfig struct {
	Path string      // key path; required
	Mode os.FileMode // key mode; default 0640 (a new file)
	// UTC writes the times in UTC (key utc; default false: local time,
	// as wu-ftpd did).
	UTC bool
	// NoSync leaves out the fsync after each batch (key no_sync).
	NoSync bool
}

// Validate checks c; problems name their key relative to audit.xferlog.
func (c *XferlogConfig) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, confkey.Errorf("path", "required"))
	}
	if c.Mode&^0o777 != 0 || c.Mode&0o002 != 0 {
		errs = append(errs, confkey.Errorf("mode", "%#o: want permission bits, not world-writable", c.Mode))
	}
	return errors.Join(errs...)
}

// Xferlog is the xferlog sink: one line in the wu-ftpd xferlog format for
// each transfer record of a file (STOR, STOU, APPE, RETR); listings and
// the other kinds are left out:
//
//	current-time transfer-time remote-host file-size filename transfer-type special-action-flag direction access-mode username service-name authentication-method authenticated-user-id completion-status
//	Mon Nov 30 00:00:07 2026 3 192.0.2.7 1048576 /in/a.zip b _ i r alice ftp 0 * c
//
// transfer-time is in whole seconds (at least 1), file-size the bytes
// that passed, transfer-type always b (the record has no TYPE),
// access-mode a for anonymous and ftp, r for the rest, the filename and
// the username have white space and control characters turned into _ (the
// fields are split on spaces), completion-status c or i. Reopen reopens
// the file (after logrotate moved it).
type Xferlog struct {
	cfg XferlogConfig
	mu  sync.Mutex
	f   *os.File
}

// NewXferlog checks cfg and opens (appends to) the file.
func NewXferlog(cfg XferlogConfig) (*Xferlog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, confkey.Under("audit.xferlog", err)
	}
	x := &Xferlog{cfg: cfg}
	if err := x.Reopen(); err != nil {
		return nil, err
	}
	return x, nil
}

// Reopen closes the file and opens its path again.
func (x *Xferlog) Reopen() error {
	mode := x.cfg.Mode
	if mode == 0 {
		mode = 0o640
	}
	f, err := os.OpenFile(x.cfg.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, mode)
	if err != nil {
		return fmt.Errorf("audit: xferlog: %w", err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.f != nil {
		x.f.Close()
	}
	x.f = f
	return nil
}

// Name is "xferlog".
func (x *Xferlog) Name() string { return "xferlog" }

// Write appends the lines of recs' file transfers in one write.
func (x *Xferlog) Write(_ context.Context, recs []Record) error {
	var b []byte
	for i := range recs {
		if line, ok := XferlogLine(&recs[i], x.loc()); ok {
			b = append(append(b, line...), '\n')
		}
	}
	if len(b) == 0 {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.f == nil {
		return errors.New("audit: xferlog: closed")
	}
	if _, err := x.f.Write(b); err != nil {
		return fmt.Errorf("audit: xferlog %s: %w", x.cfg.Path, err)
	}
	if !x.cfg.NoSync {
		if err := x.f.Sync(); err != nil {
			return fmt.Errorf("audit: xferlog %s: %w", x.cfg.Path, err)
		}
	}
	return nil
}

func (x *Xferlog) loc() *time.Location {
	if x.cfg.UTC {
		return time.UTC
	}
	return time.Local
}

// Close closes the file.
func (x *Xferlog) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.f == nil {
		return nil
	}
	err := x.f.Close()
	x.f = nil
	return err
}

// XferlogLine is r's xferlog line (without the newline), false for a
// record that is not a file transfer.
func XferlogLine(r *Record, loc *time.Location) (string, bool) {
	t := r.Transfer
	if r.Kind != KindTransfer || t == nil {
		return "", false
	}
	var dir string
	switch strings.ToUpper(t.Verb) {
	case "STOR", "STOU", "APPE":
		dir = "i"
	case "RETR":
		dir = "o"
	default:
		return "", false // listings
	}
	secs := int64(math.Ceil(t.DurationS))
	if secs < 1 {
		secs = 1
	}
	host := r.Client
	if h, _, err := net.SplitHostPort(r.Client); err == nil {
		host = h
	}
	access := "r"
	switch strings.ToLower(r.User) {
	case "anonymous", "ftp":
		access = "a"
	}
	status := "i"
	if t.Complete {
		status = "c"
	}
	fields := []string{
		r.Time.In(loc).Format("Mon Jan _2 15:04:05 2006"),
		strconv.FormatInt(secs, 10),
		xferField(host),
		strconv.FormatInt(t.Bytes, 10),
		xferField(t.Path),
		"b", "_", dir, access,
		xferField(r.User),
		"ftp", "0", "*", status,
	}
	return strings.Join(fields, " "), true
}

// xferField makes s one field: "-" when empty, white space and control
// characters turned into _.
func xferField(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(c rune) rune {
		if c <= ' ' || c == 0x7f || c == 0x85 || c == 0xa0 || c == 0x2028 || c == 0x2029 {
			return '_'
		}
		return c
	}, s)
}
