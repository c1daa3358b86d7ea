package e2e

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/vfs"
)

// partnerAccess is the README's partner: write only to incoming/, read only
// from outgoing/, no executables, uploads up to 64 KiB, no DELE.
func partnerAccess(t *testing.T, limits vfs.Limits) *vfs.Access {
	t.Helper()
	a := &vfs.Access{
		Profiles: map[string]vfs.Profile{"partner": {
			Root: "/partners/%s",
			Paths: []vfs.PathRule{
				{Path: "/", Allow: []string{"list"}},
				{Path: "/incoming/**", Allow: []string{"list", "write"}},
				{Path: "/outgoing/**", Allow: []string{"list", "read"}},
			},
			DenyNames: []string{"*.exe"},
			MaxUpload: "64KiB",
			Commands:  []string{"RETR", "STOR", "APPE", "LIST", "NLST", "MLSD", "SIZE"},
			Limits:    limits,
		}},
		Default: "partner",
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAccessRules: the path rules, the file-name filter, the command rules
// and the upload limit, each refusal with nothing done on the backend and
// the rule named in the command's log line.
func TestAccessRules(t *testing.T) {
	g := startConfined(t, partnerAccess(t, vfs.Limits{}))
	for _, d := range []string{"incoming", "outgoing"} {
		if err := os.MkdirAll(filepath.Join(g.home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	report := []byte("the partner's report")
	if err := os.WriteFile(filepath.Join(g.home, "outgoing", "report.csv"), report, 0o644); err != nil {
		t.Fatal(err)
	}
	before := tree(t, g.home)

	fc := dial(t, g.gateway, "explicit")
	// Allowed: upload to incoming/, download from outgoing/, list both.
	if err := fc.Stor("/incoming/order.csv", bytes.NewReader([]byte("an order"))); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(g.home, "incoming", "order.csv")); string(got) != "an order" {
		t.Fatalf("incoming/order.csv holds %q", got)
	}
	r, err := fc.Retr("/outgoing/report.csv")
	if err != nil {
		t.Fatal(err)
	}
	got := new(bytes.Buffer)
	_, _ = got.ReadFrom(r)
	r.Close()
	if got.String() != string(report) {
		t.Errorf("RETR outgoing/report.csv: %q", got)
	}
	if _, err := fc.List("/incoming"); err != nil {
		t.Errorf("LIST /incoming: %v", err)
	}
	fc.Quit()

	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	refused := []struct {
		line string
		code int
		rule string
	}{
		{"RETR /incoming/order.csv", 550, "access.profiles.partner"},           // incoming is write-only
		{"STOR /outgoing/x.csv", 550, "access.profiles.partner"},               // outgoing is read-only
		{"STOR /x.csv", 550, "access.profiles.partner"},                        // the root: list only
		{"STOR /incoming/tool.exe", 550, "access.profiles.partner.deny_names"}, // no executables
		{"STOR /incoming/TOOL.EXE", 550, "access.profiles.partner.deny_names"}, // in any case
		{"DELE /incoming/order.csv", 502, "access.profiles.partner.commands"},  // not an allowed command
		{"MKD /incoming/sub", 502, "access.profiles.partner.commands"},         //
		{"RNFR /incoming/order.csv", 502, "access.profiles.partner.commands"},  //
	}
	for _, x := range refused {
		c.logs(t, g, x.line, x.code, x.rule)
	}
	c.do("QUIT", wire.StatusClosing)

	// Upload past max_upload: cut, 552, and the partial file removed.
	fc = dial(t, g.gateway, "explicit")
	err = fc.Stor("/incoming/big.csv", bytes.NewReader(make([]byte, 200<<10)))
	if err == nil || !strings.Contains(err.Error(), "552") {
		t.Errorf("STOR past max_upload: %v, want 552", err)
	}
	if _, err := os.Stat(filepath.Join(g.home, "incoming", "big.csv")); !os.IsNotExist(err) {
		t.Errorf("the partial upload is still on the backend: %v", err)
	}
	// At the limit exactly: fine.
	if err := fc.Stor("/incoming/fits.csv", bytes.NewReader(make([]byte, 64<<10))); err != nil {
		t.Errorf("STOR of exactly max_upload: %v", err)
	}
	// Appending past the limit: 552, but the file that was there stays
	// (removing it would lose what it held), grown by no more than the limit.
	if err := fc.Append("/incoming/fits.csv", bytes.NewReader(make([]byte, 100<<10))); err == nil || !strings.Contains(err.Error(), "552") {
		t.Errorf("APPE past max_upload: %v, want 552", err)
	}
	if fi, err := os.Stat(filepath.Join(g.home, "incoming", "fits.csv")); err != nil || fi.Size() < 64<<10 || fi.Size() > 128<<10 {
		t.Errorf("after APPE past the limit: %v, size %d (want the file kept, 64 to 128 KiB)", err, sizeOf(fi))
	}
	fc.Quit()

	after := tree(t, g.home)
	for _, line := range after {
		if !containsLine(before, line) && !strings.HasPrefix(line, "/incoming/order.csv ") && !strings.HasPrefix(line, "/incoming/fits.csv ") {
			t.Errorf("the backend changed: %s", line)
		}
	}
	for _, verb := range []string{"DELE", "MKD", "RNFR"} {
		if strings.Contains(g.beLog.String(), verb+" ") {
			t.Errorf("%s reached the backend", verb)
		}
	}
}

func containsLine(lines []string, l string) bool {
	for _, x := range lines {
		if x == l {
			return true
		}
	}
	return false
}

// logs sends line, expects code, and checks that its command line names the
// rule that refused it.
func (c *rawClient) logs(t *testing.T, g *confinedGateway, line string, code int, rule string) {
	t.Helper()
	c.do(line, code)
	// The line is written once the reply is out: wait for it a little.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, l := range strings.Split(g.logs.String(), "\n") {
			if strings.Contains(l, `"message":"command"`) && strings.Contains(l, `"cmd":"`+line) &&
				strings.Contains(l, `"rule":"`+rule) && strings.Contains(l, `"allowed":false`) {
				return
			}
		}
	}
	t.Errorf("%s: no command line naming rule %s", line, rule)
}

// TestAccessLimits: a profile's networks, listeners and concurrent
// sessions are checked at login; refused logins reach no file.
func TestAccessLimits(t *testing.T) {
	other := netip.MustParsePrefix("192.0.2.0/24")
	g := startConfined(t, partnerAccess(t, vfs.Limits{Networks: []string{other.String()}}))
	c := dialRaw(t, g.addr("explicit"), false)
	c.startTLS()
	c.do("USER "+user, wire.StatusNeedPassword)
	c.do("PASS "+password, wire.StatusNotLoggedIn)
	waitLog(t, g.gateway, "login refused by the access rules")

	g = startConfined(t, partnerAccess(t, vfs.Limits{Listeners: []string{"implicit"}}))
	c = dialRaw(t, g.addr("explicit"), false)
	c.startTLS()
	c.do("USER "+user, wire.StatusNeedPassword)
	c.do("PASS "+password, wire.StatusNotLoggedIn)
	d := dialRaw(t, g.addr("implicit"), true)
	d.login(true)

	g = startConfined(t, partnerAccess(t, vfs.Limits{MaxSessions: 1}))
	first := dialRaw(t, g.addr("explicit"), false)
	first.login(false)
	second := dialRaw(t, g.addr("explicit"), false)
	second.startTLS()
	second.do("USER "+user, wire.StatusNeedPassword)
	second.do("PASS "+password, wire.StatusNotAvailable)
	second.expectClosed(5 * time.Second) // its count is given back as it ends
	first.do("QUIT", wire.StatusClosing)
	first.expectClosed(5 * time.Second)
	third := dialRaw(t, g.addr("explicit"), false)
	third.login(false) // the slot is free again
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return -1
	}
	return fi.Size()
}
