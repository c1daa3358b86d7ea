package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/icap"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// scriptedICAP is an ICAP filter on a scripted ICAP server that answers
// OPTIONS and then only reads: scanning gets a value when a scan's request
// arrives, released when its connection closes.
func scriptedICAP(t *testing.T) (*icap.Client, <-chan struct{}, <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	scanning, released := make(chan struct{}, 4), make(chan struct{}, 4)
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(time.Minute))
				br := bufio.NewReader(nc)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(line, "OPTIONS ") {
						for l, _ := br.ReadString('\n'); strings.TrimSpace(l) != ""; l, _ = br.ReadString('\n') {
						}
						fmt.Fprint(nc, "ICAP/1.0 200 OK\r\nMethods: REQMOD, RESPMOD\r\nISTag: \"cut\"\r\nEncapsulated: null-body=0\r\n\r\n")
						continue
					}
					scanning <- struct{}{}
					_, _ = io.Copy(io.Discard, br)
					released <- struct{}{}
					return
				}
			}()
		}
	}()
	srv, err := icap.ParseServer("icap://" + l.Addr().String() + "/scan")
	if err != nil {
		t.Fatal(err)
	}
	client, err := icap.New(icap.Config{Servers: []icap.Server{srv}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client, scanning, released
}

// TestICAPCutUploadReleasesScanner: an upload aborted in the middle (no
// Finish) lets go of its ICAP connection at once (the session closes the
// transfer's filters), not after the scan's own idle limit. The ICAP
// server here is a script that answers OPTIONS and then only reads.
func TestICAPCutUploadReleasesScanner(t *testing.T) {
	client, scanning, released := scriptedICAP(t)
	g := startGateway(t, func(c *proxy.Config) {
		c.Filters = func(m filter.Meta) []filter.Filter { return client.Filters(m) }
	})
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	port := c.epsv()
	data := c.tlsData(c.dataConn(port, ""))
	c.send("STOR cut.bin")
	c.expect(wire.StatusAboutToSend)
	if _, err := data.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-scanning:
	case <-time.After(10 * time.Second):
		t.Fatal("the upload never reached the ICAP server")
	}
	c.send("\xff\xf4\xff\xf2ABOR")
	if first := c.read(); first.Code != wire.StatusTransferAborted {
		t.Fatalf("first reply after ABOR: %d %q, want 426", first.Code, first.Text())
	}
	if second := c.read(); second.Code != 225 && second.Code != wire.StatusClosingDataConnection {
		t.Fatalf("ABOR reply: %d %q", second.Code, second.Text())
	}
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("the cut upload's ICAP connection is still open 5s after ABOR")
	}
	c.do("NOOP", wire.StatusCommandOK)
}

// TestICAPAppendRefusedKeepsFile: with partial_transfers block (the
// default), an APPE is refused with 550 before its first byte passes, no
// scan starts, and the file it would have added to stays as it was (a
// veto otherwise removes the upload's file).
func TestICAPAppendRefusedKeepsFile(t *testing.T) {
	client, scanning, _ := scriptedICAP(t)
	g := startGateway(t, func(c *proxy.Config) {
		c.Filters = func(m filter.Meta) []filter.Filter { return client.Filters(m) }
	})
	before := []byte("the file as it was\n")
	if err := os.WriteFile(filepath.Join(g.root, "log.txt"), before, 0o644); err != nil {
		t.Fatal(err)
	}
	c := dial(t, g, "explicit")
	err := c.Append("log.txt", bytes.NewReader([]byte("appended, never inspected whole\n")))
	var tp *textproto.Error
	if !errors.As(err, &tp) || tp.Code != 550 || !strings.Contains(tp.Msg, "resumed or appended") {
		t.Fatalf("APPE: %v, want 550", err)
	}
	if got := readFile(t, filepath.Join(g.root, "log.txt")); !bytes.Equal(got, before) {
		t.Fatalf("the file after the refused APPE: %q, want %q", got, before)
	}
	select {
	case <-scanning:
		t.Fatal("the refused APPE was sent to the scanner")
	default:
	}
}
