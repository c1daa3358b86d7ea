package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

func TestParsePorts(t *testing.T) {
	got, err := parsePorts("21,100-102")
	if err != nil || !slices.Equal(got, []int{21, 100, 101, 102}) {
		t.Errorf("parsePorts: %v, %v", got, err)
	}
	for _, bad := range []string{"", "x", "5-3", "0", "1-70000", "21,"} {
		if _, err := parsePorts(bad); err == nil {
			t.Errorf("parsePorts(%q): no error", bad)
		}
	}
}

func TestHopBytes(t *testing.T) {
	log := "hop-relay: listening on 127.0.0.2, 3 ports\nhop-relay: conn 21 40 300\nhop-relay: conn 100 5 1000\nhop-relay: dial x: refused\nhop-relay: conn 101 2000 0\nhop-relay: conn 10"
	c, d, b := hopBytes([]byte(log), 21)
	if c != 1 || d != 2 || b != 3005 {
		t.Errorf("hopBytes: %d control, %d data, %d bytes; want 1, 2, 3005", c, d, b)
	}
}

// The relay copies both ways, passes a half-close on (the target sees EOF
// of the upload and still answers), and logs the connection's bytes.
func TestServeHop(t *testing.T) {
	target, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	// The target reads to EOF, then answers with twice what it read.
	go func() {
		c, err := target.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		c.Write(append(b, b...))
	}()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var buf testproc.SyncBuffer
	out := &lineWriter{w: bufio.NewWriter(&buf)}
	go serveHop(ln, target.Addr().String(), 4242, out)

	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	up := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB: more than one buffer
	if _, err := c.Write(up); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	down, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(down, append(up, up...)) {
		t.Fatalf("read %d bytes (%v), want %d", len(down), err, 2*len(up))
	}
	want := "hop-relay: conn 4242 " + strconv.Itoa(len(up)) + " " + strconv.Itoa(2*len(up)) + "\n"
	for deadline := time.Now().Add(5 * time.Second); buf.String() != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("log %q, want %q", buf.String(), want)
		}
	}
	if _, d, b := hopBytes([]byte(buf.String()), 21); d != 1 || b != int64(3*len(up)) {
		t.Errorf("hopBytes: %d data connections, %d bytes", d, b)
	}
}

// The relay's buffer copy cannot see the TCP connections' ReadFrom and
// WriteTo (splice): io.CopyBuffer uses the buffer.
func TestPlainWrappers(t *testing.T) {
	var _ io.Reader = plainReader{}
	if _, ok := any(plainReader{}).(io.WriterTo); ok {
		t.Error("plainReader is an io.WriterTo")
	}
	if _, ok := any(plainWriter{}).(io.ReaderFrom); ok {
		t.Error("plainWriter is an io.ReaderFrom")
	}
}
