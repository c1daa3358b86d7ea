package hold

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// openSpills lists this process's open files under dir (the spill files,
// unlinked: "(deleted)").
func openSpills(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	var out []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && filepath.Dir(target) == dir {
			out = append(out, target)
		}
	}
	return out
}

func TestBuffer(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cfg         Config
		size, chunk int
		spilled     int64
		tooLarge    bool
	}{
		{name: "empty", cfg: Config{MemoryBytes: 100}, size: 0, chunk: 10},
		{name: "memory only", cfg: Config{MemoryBytes: 100}, size: 100, chunk: 7},
		{name: "spill across a write", cfg: Config{MemoryBytes: 100}, size: 1000, chunk: 33, spilled: 900},
		{name: "spill from the first write", cfg: Config{MemoryBytes: 10}, size: 5000, chunk: 4096, spilled: 4990},
		{name: "exactly max", cfg: Config{MemoryBytes: 10, MaxBytes: 300}, size: 300, chunk: 100, spilled: 290},
		{name: "past max", cfg: Config{MemoryBytes: 10, MaxBytes: 300}, size: 301, chunk: 100, spilled: 290, tooLarge: true},
		{name: "past max in memory", cfg: Config{MemoryBytes: 1000, MaxBytes: 50}, size: 60, chunk: 30, tooLarge: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.cfg.Dir = dir
			b := New(tc.cfg)
			data := pattern(tc.size)
			var err error
			for off := 0; off < len(data) && err == nil; off += tc.chunk {
				_, err = b.Write(data[off:min(off+tc.chunk, len(data))])
			}
			if tc.tooLarge {
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("write past max_bytes: %v, want ErrTooLarge", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := b.Spilled(); got != tc.spilled {
				t.Errorf("spilled %d bytes, want %d", got, tc.spilled)
			}
			if int64(cap(b.mem)) > b.cfg.memoryBytes() {
				t.Errorf("memory %d bytes, above memory_bytes %d", cap(b.mem), b.cfg.memoryBytes())
			}
			if names, _ := os.ReadDir(dir); len(names) != 0 {
				t.Errorf("spill file left with a name in %s: %v", dir, names)
			}
			if tc.spilled > 0 && len(openSpills(t, dir)) != 1 {
				t.Errorf("open spill files in %s: %v, want one", dir, openSpills(t, dir))
			}
			if !tc.tooLarge {
				got, err := io.ReadAll(b.Reader())
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("read back %d bytes (err %v), want the %d written", len(got), err, len(data))
				}
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if got := b.Spilled(); got != tc.spilled {
				t.Errorf("after Close: spilled %d bytes, want %d", got, tc.spilled)
			}
			if got := openSpills(t, dir); len(got) != 0 {
				t.Errorf("spill files still open after Close: %v", got)
			}
			if _, err := b.Write([]byte("x")); err == nil {
				t.Error("Write after Close succeeded")
			}
			_ = b.Close() // twice is fine
		})
	}
}

// A spill that cannot be created fails the write and every later one, and
// leaves nothing.
func TestBufferSpillError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	b := New(Config{MemoryBytes: 4, Dir: dir})
	if _, err := b.Write([]byte("12345678")); err == nil {
		t.Fatal("spill into a missing directory succeeded")
	}
	if _, err := b.Write([]byte("1")); err == nil {
		t.Fatal("write after a failed spill succeeded")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{MaxBytes: 10, MemoryBytes: 10, Dir: t.TempDir()}, true},
		{Config{MaxBytes: -1}, false},
		{Config{MemoryBytes: -1}, false},
		{Config{MaxBytes: 10, MemoryBytes: 11}, false},
		{Config{Dir: file}, false},
		{Config{Dir: file + "/x"}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v", tc.cfg, err)
		}
	}
}

// BenchmarkHold is the cost of holding a download: written in relay-sized
// buffers, spilled past 8 MiB, read back (b.SetBytes: MB/s per core).
func BenchmarkHold(b *testing.B) {
	const size = 64 << 20
	chunk := pattern(512 << 10)
	out := make([]byte, 512<<10)
	dir := b.TempDir()
	b.SetBytes(size)
	for b.Loop() {
		h := New(Config{Dir: dir})
		for n := 0; n < size; n += len(chunk) {
			if _, err := h.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{h.Reader()}, out); err != nil {
			b.Fatal(err)
		}
		_ = h.Close()
	}
}
