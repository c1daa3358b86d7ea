package tunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/rs/zerolog"
)

type readOnly struct{ io.Reader }

func (readOnly) Write(b []byte) (int, error) { return len(b), nil }
func (readOnly) Close() error                { return nil }

// TestPingGuardFrames: the guard follows yamux's frames whatever the
// reads' sizes: a data frame's body is skipped (pings inside it are data),
// pings up to the bound pass, and one more ends the reads.
func TestPingGuardFrames(t *testing.T) {
	var in bytes.Buffer
	body := pingFrames(300) // looks like pings, but is a data frame's body
	h := make([]byte, headerSize)
	binary.BigEndian.PutUint32(h[8:], uint32(len(body)))
	in.Write(h) // type 0: data
	in.Write(body)
	in.Write(pingFrames(maxPingsPerSecond))
	ok := in.Len()
	for _, chunk := range []int{1, 7, 4096} {
		g := guardPings(readOnly{iotest.HalfReader(bytes.NewReader(in.Bytes()[:ok]))}, zerolog.Nop())
		buf := make([]byte, chunk)
		n := 0
		for {
			m, err := g.Read(buf)
			n += m
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("reads of %d: %v after %d bytes", chunk, err, n)
			}
		}
		if n != ok {
			t.Fatalf("reads of %d: %d bytes, want %d", chunk, n, ok)
		}
	}
	in.Write(pingFrames(1))
	g := guardPings(readOnly{&in}, zerolog.Nop())
	if _, err := io.Copy(io.Discard, struct{ io.Reader }{g}); !errors.Is(err, errPingFlood) {
		t.Fatalf("one ping more: %v, want errPingFlood", err)
	}
}
