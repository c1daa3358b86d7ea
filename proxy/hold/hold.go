package hold

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// ErrTooLarge: a Write would hold more than Config.MaxBytes.
var ErrTooLarge = errors.New("hold: the download is larger than inspect.hold.max_bytes")

// The defaults of Config's zero fields.
const (
	DefaultMaxBytes    = 1 << 30 // 1 GiB
	DefaultMemoryBytes = 8 << 20 // 8 MiB
)

// Config bounds a Buffer. The zero value holds up to DefaultMaxBytes,
// DefaultMemoryBytes of it in memory, the rest in os.TempDir().
type Config struct {
	MaxBytes    int64  // inspect.hold.max_bytes; 0: DefaultMaxBytes
	MemoryBytes int64  // inspect.hold.memory_bytes; 0: DefaultMemoryBytes
	Dir         string // inspect.hold.dir; "": os.TempDir()
}

func (c Config) maxBytes() int64 {
	if c.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return c.MaxBytes
}

func (c Config) memoryBytes() int64 {
	if c.MemoryBytes <= 0 {
		return DefaultMemoryBytes
	}
	return min(c.MemoryBytes, c.maxBytes())
}

func (c Config) dir() string {
	if c.Dir == "" {
		return os.TempDir()
	}
	return c.Dir
}

// Validate checks c; each problem is a *confkey.Error naming its key
// (max_bytes, memory_bytes, dir: under inspect.hold).
func (c Config) Validate() error {
	var errs []error
	if c.MaxBytes < 0 {
		errs = append(errs, confkey.Errorf("max_bytes", "must not be negative"))
	}
	if c.MemoryBytes < 0 {
		errs = append(errs, confkey.Errorf("memory_bytes", "must not be negative"))
	}
	if c.MemoryBytes > 0 && c.MemoryBytes > c.maxBytes() {
		errs = append(errs, confkey.Errorf("memory_bytes", "%d is more than max_bytes (%d)", c.MemoryBytes, c.maxBytes()))
	}
	if c.Dir != "" {
		if fi, err := os.Stat(c.Dir); err != nil {
			errs = append(errs, confkey.New("dir", err))
		} else if !fi.IsDir() {
			errs = append(errs, confkey.Errorf("dir", "%s is not a directory", c.Dir))
		}
	}
	return errors.Join(errs...)
}

// Buffer holds one download: Write appends (memory first, then the spill
// file), Reader reads it back from the start, Close lets everything go. A
// Buffer is used by one goroutine at a time.
type Buffer struct {
	cfg   Config
	mem   []byte   // the first bytes, up to cfg.memoryBytes()
	file  *os.File // the rest, from offset 0; nil until the first spill
	path  string   // the spill file's name while it still has one (unlinking failed)
	n     int64    // bytes held
	inMem int64    // of them in mem (len(mem) until Close)
	limit int64
	err   error // a failed spill: every later Write fails
}

// New returns an empty Buffer bounded by c.
func New(c Config) *Buffer {
	return &Buffer{cfg: c, limit: c.maxBytes()}
}

// Len is the number of bytes held.
func (b *Buffer) Len() int64 { return b.n }

// Spilled is the number of bytes held on disk.
func (b *Buffer) Spilled() int64 { return b.n - b.inMem }

// Write appends p. Past MaxBytes it writes nothing and returns
// ErrTooLarge; a spill file that cannot be created or written fails this
// and every later Write.
func (b *Buffer) Write(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.limit-b.n {
		return 0, fmt.Errorf("%w (%d bytes)", ErrTooLarge, b.limit)
	}
	k := 0
	if room := b.cfg.memoryBytes() - int64(len(b.mem)); room > 0 && b.file == nil {
		k = int(min(room, int64(len(p))))
		b.grow(k)
		b.mem = append(b.mem, p[:k]...)
		b.n += int64(k)
		b.inMem += int64(k)
	}
	if k == len(p) {
		return k, nil
	}
	if b.file == nil {
		if err := b.spill(); err != nil {
			b.err = err
			return k, err
		}
	}
	m, err := b.file.Write(p[k:])
	b.n += int64(m)
	if err != nil {
		b.err = fmt.Errorf("hold: writing the spill file: %w", err)
		return k + m, b.err
	}
	return len(p), nil
}

// grow makes room for k more bytes in memory, never beyond memoryBytes.
func (b *Buffer) grow(k int) {
	need := len(b.mem) + k
	if need <= cap(b.mem) {
		return
	}
	c := int64(max(2*cap(b.mem), need, 64<<10))
	c = min(c, b.cfg.memoryBytes())
	m := make([]byte, len(b.mem), c)
	copy(m, b.mem)
	b.mem = m
}

// spill creates the spill file (0600, os.CreateTemp) and unlinks it: the
// open file lives on until Close, and no name is left behind.
func (b *Buffer) spill() error {
	f, err := os.CreateTemp(b.cfg.dir(), "ftpsgate-hold-*")
	if err != nil {
		return fmt.Errorf("hold: creating the spill file: %w", err)
	}
	b.file = f
	if err := os.Remove(f.Name()); err != nil {
		b.path = f.Name() // removed by Close
	}
	return nil
}

// Reader reads the held bytes from the start. It reads the Buffer as it
// is: call it once the writes are over.
func (b *Buffer) Reader() io.Reader {
	if b.file == nil {
		return bytes.NewReader(b.mem)
	}
	return io.MultiReader(bytes.NewReader(b.mem), io.NewSectionReader(b.file, 0, b.Spilled()))
}

// Close lets the memory go and closes (and, if unlinking it failed,
// removes) the spill file; Len and Spilled still tell what was held. It
// may be called more than once.
func (b *Buffer) Close() error {
	b.mem = nil
	if b.err == nil {
		b.err = errClosed
	}
	var err error
	if b.file != nil {
		err = b.file.Close()
		b.file = nil
	}
	if b.path != "" {
		if rerr := os.Remove(b.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		b.path = ""
	}
	return err
}

var errClosed = errors.New("hold: buffer closed")
