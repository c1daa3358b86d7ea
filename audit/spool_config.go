package audit

import (
	"errors"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Defaults of SpoolConfig.
const (
	DefaultSpoolMaxBytes     = 256 << 20
	DefaultSpoolSegmentBytes = 4 << 20
	DefaultSpoolBatch        = 100
	DefaultSpoolBackoffMin   = 500 * time.Millisecond
	DefaultSpoolBackoffMax   = 30 * time.Second
	DefaultSpoolWriteTimeout = 30 * time.Second
	DefaultSpoolCloseTimeout = 5 * time.Second
)

// ErrSpoolFull is returned by Spool.Write when the batch would take the
// spool past its size bound: the batch is not kept (the trail counts it
// as dropped).
var ErrSpoolFull = errors.New("spool full")

// ErrSpoolClosed is returned by Spool.Write after Close.
var ErrSpoolClosed = errors.New("spool closed")

// SpoolConfig configures a spool (keys under audit.<sink>.spool, e.g.
// audit.syslog.spool). The zero value of each field but Dir takes its
// default.
type SpoolConfig struct {
	Dir          string        // key dir; required; one directory per sink, not shared
	MaxBytes     int64         // key max_bytes; default 256 MiB
	SegmentBytes int64         // key segment_bytes; default 4 MiB
	Batch        int           // key batch; records per delivery, default 100
	BackoffMin   time.Duration // key backoff_min; default 500ms
	BackoffMax   time.Duration // key backoff_max; default 30s
	WriteTimeout time.Duration // key write_timeout; one delivery, default 30s
	CloseTimeout time.Duration // key close_timeout; default 5s
}

func (c *SpoolConfig) maxBytes() int64 {
	if c.MaxBytes <= 0 {
		return DefaultSpoolMaxBytes
	}
	return c.MaxBytes
}
func (c *SpoolConfig) segmentBytes() int64 {
	if c.SegmentBytes <= 0 {
		return DefaultSpoolSegmentBytes
	}
	return c.SegmentBytes
}
func (c *SpoolConfig) batch() int {
	if c.Batch <= 0 {
		return DefaultSpoolBatch
	}
	return c.Batch
}
func (c *SpoolConfig) backoffMin() time.Duration {
	return remoteOrDur(c.BackoffMin, DefaultSpoolBackoffMin)
}
func (c *SpoolConfig) backoffMax() time.Duration {
	return remoteOrDur(c.BackoffMax, DefaultSpoolBackoffMax)
}
func (c *SpoolConfig) writeTimeout() time.Duration {
	return remoteOrDur(c.WriteTimeout, DefaultSpoolWriteTimeout)
}
func (c *SpoolConfig) closeTimeout() time.Duration {
	return remoteOrDur(c.CloseTimeout, DefaultSpoolCloseTimeout)
}

// Validate checks c; problems name their key relative to the spool section.
func (c *SpoolConfig) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, confkey.Errorf("dir", "required (a directory of its own for this sink's spool)"))
	}
	if c.MaxBytes < 0 || c.SegmentBytes < 0 || c.Batch < 0 {
		errs = append(errs, confkey.Errorf("max_bytes", "max_bytes, segment_bytes and batch cannot be negative"))
	}
	if c.segmentBytes() > c.maxBytes() {
		errs = append(errs, confkey.Errorf("segment_bytes", "%d is above max_bytes %d", c.segmentBytes(), c.maxBytes()))
	}
	if c.backoffMax() < c.backoffMin() {
		errs = append(errs, confkey.Errorf("backoff_max", "%s is below backoff_min %s", c.backoffMax(), c.backoffMin()))
	}
	return errors.Join(errs...)
}

// SpoolHooks are the spool's metrics callbacks; each may be nil. They are
// called from the spool's goroutines and must not block.
type SpoolHooks struct {
	Queued    func(bytes int64)            // the bytes now waiting in the spool
	Delivered func(records int)            // records the inner sink took
	Dropped   func(records int, err error) // records lost inside the spool (an unreadable spool line); refused ones (ErrSpoolFull) are the caller's to count
	Up        func(up bool, err error)     // the inner sink failed (up false, its error) or works again
}
