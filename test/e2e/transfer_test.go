package e2e

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jlaffaye/ftp"

	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// TestRoundTrip uploads, lists, downloads (SHA-256 compared) and deletes
// through both listeners, with EPSV and with PASV.
func TestRoundTrip(t *testing.T) {
	g := startGateway(t)
	for _, listener := range []string{"explicit", "implicit"} {
		for _, pasv := range []bool{false, true} {
			name := listener + "/epsv"
			if pasv {
				name = listener + "/pasv"
			}
			t.Run(name, func(t *testing.T) {
				c := dial(t, g, listener, ftp.DialWithDisabledEPSV(pasv))
				file := "round trip " + strings.ReplaceAll(name, "/", "-") + ".bin"
				storListRetr(t, c, g.root, file, 5<<20+123)
				names, err := c.NameList("/")
				if err != nil || len(names) == 0 {
					t.Fatalf("NLST: %v %v", names, err)
				}
				if err := c.Delete(file); err != nil {
					t.Fatalf("DELE: %v", err)
				}
				if _, err := os.Stat(filepath.Join(g.root, file)); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("file still there after DELE: %v", err)
				}
			})
		}
	}
}

// storListRetr uploads size random bytes as file, checks them on the
// backend's disk (root), in LIST with their size, and downloaded back, by
// SHA-256.
func storListRetr(t *testing.T, c *ftp.ServerConn, root, file string, size int) {
	t.Helper()
	data := randomBytes(t, size)
	if err := c.Stor(file, bytes.NewReader(data)); err != nil {
		t.Fatalf("STOR: %v", err)
	}
	if got := sum(readFile(t, filepath.Join(root, file))); got != sum(data) {
		t.Fatalf("stored file hash %s, want %s", got, sum(data))
	}
	entries, err := c.List("/")
	if err != nil {
		t.Fatalf("LIST: %v", err)
	}
	found := false
	for _, e := range entries {
		found = found || e.Name == file && e.Size == uint64(len(data))
	}
	if !found {
		t.Fatalf("LIST does not show %q with its size: %+v", file, entries)
	}
	r, err := c.Retr(file)
	if err != nil {
		t.Fatalf("RETR: %v", err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("RETR final reply: %v", err)
	}
	if sum(got) != sum(data) {
		t.Fatalf("downloaded %d bytes with hash %s, want %d bytes %s", len(got), sum(got), len(data), sum(data))
	}
}

// TestResume uses REST+STOR and REST+RETR.
func TestResume(t *testing.T) {
	g := startGateway(t)
	c := dial(t, g, "explicit")
	data := randomBytes(t, 3<<20)
	half := len(data) / 2
	if err := c.Stor("resume.bin", bytes.NewReader(data[:half])); err != nil {
		t.Fatal(err)
	}
	if err := c.StorFrom("resume.bin", bytes.NewReader(data[half:]), uint64(half)); err != nil {
		t.Fatalf("REST+STOR: %v", err)
	}
	if got := sum(readFile(t, filepath.Join(g.root, "resume.bin"))); got != sum(data) {
		t.Fatal("resumed upload differs")
	}
	r, err := c.RetrFrom("resume.bin", uint64(half))
	if err != nil {
		t.Fatalf("REST+RETR: %v", err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data[half:]) {
		t.Fatalf("resumed download: %d bytes, want %d", len(got), len(data)-half)
	}
	size, err := c.FileSize("resume.bin")
	if err != nil || size != int64(len(data)) {
		t.Fatalf("SIZE = %d, %v", size, err)
	}
}

// TestDirectoriesAndRename covers MKD, CWD, PWD, RNFR/RNTO, RMD and MLSD.
func TestDirectoriesAndRename(t *testing.T) {
	g := startGateway(t)
	c := dial(t, g, "implicit")
	if err := c.MakeDir("dir one"); err != nil {
		t.Fatal(err)
	}
	if err := c.ChangeDir("dir one"); err != nil {
		t.Fatal(err)
	}
	if dir, err := c.CurrentDir(); err != nil || !strings.HasSuffix(dir, "dir one") {
		t.Fatalf("PWD = %q, %v", dir, err)
	}
	if err := c.Stor("ünïcode.txt", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("ünïcode.txt", "renamed.txt"); err != nil {
		t.Fatal(err)
	}
	entries, err := c.List("") // MLSD when the backend offers it
	if err != nil || len(entries) != 1 || entries[0].Name != "renamed.txt" {
		t.Fatalf("listing = %+v, %v", entries, err)
	}
	if err := c.Delete("renamed.txt"); err != nil {
		t.Fatal(err)
	}
	if err := c.ChangeDirToParent(); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveDir("dir one"); err != nil {
		t.Fatal(err)
	}
}

// TestZeroByteFile relays an empty file both ways.
func TestZeroByteFile(t *testing.T) {
	g := startGateway(t)
	c := dial(t, g, "explicit")
	if err := c.Stor("empty", bytes.NewReader(nil)); err != nil {
		t.Fatal(err)
	}
	r, err := c.Retr("empty")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	if err := r.Close(); err != nil || len(b) != 0 {
		t.Fatalf("got %d bytes, %v", len(b), err)
	}
}

// TestPassivePortsAndHost checks that every 227/229 port lies in the
// configured range and that 227 advertises passive.public_host.
func TestPassivePortsAndHost(t *testing.T) {
	public := netip.MustParseAddr("203.0.113.10")
	g := startGateway(t, func(c *proxy.Config) { c.Passive.PublicHost = public })
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	rng := g.cfg.Passive.Ports
	for i := range 6 {
		var port uint16
		if i%2 == 0 {
			rep := c.do("PASV", wire.StatusPassiveMode)
			ap, err := wire.ParsePASV(rep.Text())
			if err != nil {
				t.Fatal(err)
			}
			if ap.Addr() != public {
				t.Fatalf("227 host %s, want %s", ap.Addr(), public)
			}
			port = ap.Port()
		} else {
			port = c.epsv()
		}
		if !rng.Contains(port) {
			t.Fatalf("port %d outside %s", port, rng)
		}
	}
}
