package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/icap"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// TestICAPCutUploadReleasesScanner: an upload aborted in the middle (no
// Finish) lets go of its ICAP connection at once (the session closes the
// transfer's filters), not after the scan's own idle limit. The ICAP
// server here is a script that answers OPTIONS and then only reads.
func TestICAPCutUploadReleasesScanner(t *testing.T) {
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
