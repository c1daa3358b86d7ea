package tunnel

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// writeLog records each Write it gets.
type writeLog struct {
	bytes.Buffer
	writes [][]byte
}

func (w *writeLog) Write(b []byte) (int, error) {
	w.writes = append(w.writes, append([]byte(nil), b...))
	return w.Buffer.Write(b)
}

func (w *writeLog) Close() error { return nil }

func header(typ byte, length uint32) []byte {
	h := make([]byte, headerSize)
	h[1] = typ
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

// TestFrameWriter: a data header with a body goes out with its body in one
// Write; any other header goes out at once (a window update held back
// would stall the peer).
func TestFrameWriter(t *testing.T) {
	var log writeLog
	w := &frameWriter{ReadWriteCloser: &log}
	body := []byte("hello")
	for _, b := range [][]byte{header(typeData, 5), body, header(1, 1<<20), header(typeData, 0), header(2, 7)} {
		if n, err := w.Write(b); n != len(b) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if len(log.writes) != 4 {
		t.Fatalf("%d writes, want 4 (data frame, window update, empty data frame, ping)", len(log.writes))
	}
	if !bytes.Equal(log.writes[0], append(header(typeData, 5), body...)) {
		t.Fatalf("first write %x", log.writes[0])
	}
	if w.pending {
		t.Fatal("a header is still held")
	}
}

// logConn is a net.Conn that records its writes.
type logConn struct {
	net.Conn
	log *writeLog
}

func (c logConn) Write(b []byte) (int, error) { return c.log.Write(b) }

// TestBatchConn: what is written between begin and end leaves in one
// write, after what was written before and before what comes after.
func TestBatchConn(t *testing.T) {
	var log writeLog
	c := &batchConn{Conn: logConn{log: &log}}
	_, _ = c.Write([]byte("a"))
	c.begin()
	_, _ = c.Write([]byte("record1"))
	_, _ = c.Write([]byte("record2"))
	if len(log.writes) != 1 {
		t.Fatalf("%d writes during a batch", len(log.writes))
	}
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("z"))
	if len(log.writes) != 3 || string(log.writes[1]) != "record1record2" || log.String() != "arecord1record2z" {
		t.Fatalf("writes %q", log.writes)
	}
	if err := c.end(); err != nil || len(log.writes) != 3 {
		t.Fatalf("an empty batch wrote: %q %v", log.writes, err)
	}
}

// TestFrameWriterReset: a reset goes out at once, but never between a held
// data header and its body: after the body.
func TestFrameWriterReset(t *testing.T) {
	var log writeLog
	w := &frameWriter{ReadWriteCloser: &log}
	rst := make([]byte, headerSize)
	rst[1], rst[3], rst[7] = typeWindowUpdate, flagRST, 9 // stream 9
	if err := w.reset(9); err != nil || len(log.writes) != 1 || !bytes.Equal(log.writes[0], rst) {
		t.Fatalf("reset: %v, writes %x", err, log.writes)
	}
	_, _ = w.Write(header(typeData, 5))
	if err := w.reset(9); err != nil || len(log.writes) != 1 {
		t.Fatalf("reset while a header is held: %v, %d writes", err, len(log.writes))
	}
	_, _ = w.Write([]byte("hello"))
	want := append(append(header(typeData, 5), "hello"...), rst...)
	if !bytes.Equal(log.Bytes()[headerSize:], want) {
		t.Fatalf("after the body: %x, want %x", log.Bytes()[headerSize:], want)
	}
}
