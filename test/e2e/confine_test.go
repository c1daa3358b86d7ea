package e2e

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/internal/demoftpd"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/vfs"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

// confinedAccess gives every user the root /partners/<user>.
var confinedAccess = &vfs.Access{Profiles: map[string]vfs.Profile{"partner": {Root: "/partners/%s"}}, Default: "partner"}

// confinedGateway is a gateway in front of a demo backend whose commands
// are recorded (beLog), with sessions confined by access.
type confinedGateway struct {
	*gateway
	beLog *testproc.SyncBuffer
	home  string // the user's root on disk
}

func startConfined(t *testing.T, access proxy.AccessResolver, opts ...option) *confinedGateway {
	t.Helper()
	return startConfinedWith(t, access, nil, opts...)
}

func startConfinedWith(t *testing.T, access proxy.AccessResolver, deps []proxy.Option, opts ...option) *confinedGateway {
	t.Helper()
	root := t.TempDir()
	home := filepath.Join(root, "partners", user)
	for _, d := range []string{home, filepath.Join(root, "partners", "partner"), filepath.Join(root, "etc"), filepath.Join(root, "partners", "other")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(root, "x"), filepath.Join(root, "secret.txt"), filepath.Join(root, "partners", "other", "x")} {
		if err := os.WriteFile(f, []byte("outside the root"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	beLog := &testproc.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	be, err := demoftpd.Start(ctx, demoftpd.Config{Root: root, User: user, Password: password, Logger: zerolog.New(beLog).Level(zerolog.DebugLevel)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); be.Close() })
	if access != nil {
		deps = append(deps, proxy.WithAccess(access))
	}
	g := startGatewayWith(t, deps, append([]option{func(c *proxy.Config) {
		c.Backend.Address = be.Addr()
		c.Bans = policy.BanConfig{MaxFailures: 100}
	}}, opts...)...)
	return &confinedGateway{gateway: g, beLog: beLog, home: home}
}

// tree lists the files and directories below dir, with each file's size.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		out = append(out, strings.TrimPrefix(p, dir)+" "+info.Mode().String()+" "+strconv.FormatInt(info.Size(), 10))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// noRoot fails when a reply names the backend's root.
func noRoot(t *testing.T, what string, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, "partners") {
			t.Errorf("%s: the reply leaks the root: %q", what, s)
		}
	}
}

// TestConfinedSession: a confined user works inside the root (PWD "/",
// MKD, CWD, upload, list, rename, resume, download, MLST, SIZE) and never
// sees the backend's root directory in a reply.
func TestConfinedSession(t *testing.T) {
	g := startConfined(t, confinedAccess)
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	rep := c.do("PWD", wire.StatusPathCreated)
	if rep.Text() != `"/" is the current directory.` {
		t.Errorf("PWD: %q", rep.Text())
	}
	rep = c.do("MKD in", wire.StatusPathCreated)
	if p, _, _ := vfs.Parse257(rep.Text()); p != "/in" {
		t.Errorf("MKD: %q", rep.Text())
	}
	noRoot(t, "CWD", c.do("CWD /in", 250).Text())
	if rep := c.do("XPWD", wire.StatusPathCreated); !strings.HasPrefix(rep.Text(), `"/in"`) {
		t.Errorf("PWD after CWD: %q", rep.Text())
	}
	rep = c.do("CWD nope", 550) // refused: the session stays in /in
	if !strings.Contains(rep.Text(), "/in/nope") {
		t.Errorf("CWD nope: %q (want the virtual path)", rep.Text())
	}
	noRoot(t, "CWD nope", rep.Text())
	// Backend texts that echo the backend path show the virtual one.
	if rep := c.do("SIZE nope", 550); !strings.HasPrefix(rep.Text(), "/in/nope:") {
		t.Errorf("SIZE nope: %q", rep.Text())
	}
	if rep := c.do("STAT /in", 213); !strings.HasPrefix(rep.Lines[0], "Status of /in:") {
		t.Errorf("STAT /in: %q", rep.Text())
	}
	c.do("CDUP", 250)
	c.do("CWD in", 250)
	// MKD's 257 of a nested directory, and one whose name holds the root.
	c.do("MKD /deep", wire.StatusPathCreated)
	if rep := c.do("MKD ../deep/partners", wire.StatusPathCreated); !strings.HasPrefix(rep.Text(), `"/deep/partners"`) {
		t.Errorf("MKD ../deep/partners: %q", rep.Text())
	}
	if rep := c.do("MKD /deep/partners/demo", wire.StatusPathCreated); !strings.HasPrefix(rep.Text(), `"/deep/partners/demo"`) {
		t.Errorf("MKD /deep/partners/demo: %q", rep.Text())
	}
	c.do("QUIT", wire.StatusClosing)

	fc := dial(t, g.gateway, "explicit")
	if err := fc.ChangeDir("/in"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 100_000)
	name := "créé.csv"
	if err := fc.Stor(name, bytes.NewReader(data[:40_000])); err != nil {
		t.Fatal(err)
	}
	if err := fc.StorFrom(name, bytes.NewReader(data[40_000:]), 40_000); err != nil { // REST + STOR
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(g.home, "in", name)); sum(got) != sum(data) {
		t.Fatalf("uploaded %d bytes, backend has %d", len(data), len(got))
	}
	names, err := fc.NameList("/in")
	if err != nil {
		t.Fatal(err)
	}
	noRoot(t, "NLST", names...)
	if !slices.ContainsFunc(names, func(s string) bool { return strings.HasSuffix(s, name) }) {
		t.Errorf("NLST /in: %q", names)
	}
	entries, err := fc.List("")
	if err != nil || len(entries) != 1 || entries[0].Name != name {
		t.Errorf("LIST: %v %v", entries, err)
	}
	if n, err := fc.FileSize(name); err != nil || n != int64(len(data)) {
		t.Errorf("SIZE: %d %v", n, err)
	}
	r, err := fc.RetrFrom(name, 60_000) // REST + RETR
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, data[60_000:]) {
		t.Errorf("RETR from 60000: %d bytes", len(got))
	}
	// An absolute path is the virtual tree's: /etc is the root's etc.
	if err := fc.MakeDir("/etc"); err != nil {
		t.Fatal(err)
	}
	if err := fc.Rename(name, "/etc/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(g.home, "etc", "x")); err != nil {
		t.Errorf("RNTO /etc/x: %v", err)
	}
	if got := readFile(t, filepath.Join(filepath.Dir(filepath.Dir(g.home)), "x")); string(got) != "outside the root" {
		t.Error("the backend's own files changed")
	}
	if _, err := fc.Retr("/secret.txt"); err == nil {
		t.Error("RETR /secret.txt: the backend's /secret.txt was served")
	}
	e, err := fc.GetEntry("/etc/x") // MLST
	if err != nil || e.Name != "/etc/x" {
		t.Errorf("MLST: %+v %v", e, err)
	}
	if !strings.Contains(g.logs.String(), `"path":"/etc/x"`) {
		t.Error("no command line with the virtual path")
	}
}

// TestConfinedEscapes: every way out of the root gets 550, and nothing
// reaches the backend (its command log) or changes on its disk.
func TestConfinedEscapes(t *testing.T) {
	g := startConfined(t, confinedAccess, func(c *proxy.Config) { c.Login.AllowedSiteCommands = []string{"CHMOD", "SYMLINK"} })
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	c.do("MKD a", wire.StatusPathCreated)
	before := tree(t, filepath.Dir(filepath.Dir(g.home)))
	escapes := []string{
		"CWD ..", "XCWD ..", "CDUP", "XCUP", "CWD /../..", "CWD /..", "RETR ../x", "RETR ../../x", "RETR /../x",
		"SIZE ../other/x", "MDTM ../other/x", "MDTM 20200101000000 ../other/x", "DELE ../other/x",
		"RNFR ../other/x", "RNTO ../x", "MKD a/../../b", "XMKD ../b", "RMD ../other", "STOR ../y", "APPE ../y",
		"STOU ../y", "LIST -la ..", "NLST ../other", "MLSD ..", "MLST ..", "STAT ../other",
		"SITE CHMOD 777 ../x", "SITE CHMOD 777 /../etc", `RETR ..\x`, `CWD a\..\..`, "RETR \xc0\xae\xc0\xae/x", "CWD \xc0\xaf", "RETR a\x7fb",
	}
	for _, line := range escapes {
		if strings.HasPrefix(line, "RETR") || strings.HasPrefix(line, "STOR") || strings.HasPrefix(line, "APPE") ||
			strings.HasPrefix(line, "STOU") || strings.HasPrefix(line, "LIST") || strings.HasPrefix(line, "NLST") || strings.HasPrefix(line, "MLSD") {
			c.epsv() // a transfer's data connection is prepared first
		}
		mark := len(g.beLog.String())
		rep := c.do(line, wire.StatusFileUnavailable)
		noRoot(t, line, rep.Text())
		c.do("NOOP", 200) // relayed: the backend has read everything before it
		seen := g.beLog.String()[mark:]
		for _, l := range strings.Split(seen, "\n") {
			if strings.Contains(l, `"message":"command"`) && !strings.Contains(l, `"cmd":"NOOP"`) {
				t.Errorf("%q reached the backend: %s", line, l)
			}
		}
		if rep := c.do("PWD", wire.StatusPathCreated); !strings.HasPrefix(rep.Text(), `"/"`) {
			t.Fatalf("after %q: PWD %q", line, rep.Text())
		}
	}
	// A NUL or a bare CR in the line: refused (the line, or the path).
	for _, line := range []string{"RETR a\x00../../x", "DELE ../x\rDELE y"} {
		mark := len(g.beLog.String())
		c.send(line)
		if rep := c.read(); rep.Code != wire.StatusFileUnavailable && rep.Code != wire.StatusSyntaxError {
			t.Errorf("%q: %d %q", line, rep.Code, rep.Text())
		}
		c.do("NOOP", 200)
		if seen := g.beLog.String()[mark:]; strings.Count(seen, `"message":"command"`) != 1 {
			t.Errorf("%q reached the backend: %s", line, seen)
		}
	}
	// Verbs whose paths the gateway cannot map are refused, not relayed.
	for _, line := range []string{"SITE SYMLINK /etc/passwd x", "SMNT /", "MFMT 20200101000000", "XRCP /x"} {
		c.do(line, wire.StatusNotImplemented)
	}
	if after := tree(t, filepath.Dir(filepath.Dir(g.home))); !slices.Equal(before, after) {
		t.Errorf("the backend's tree changed:\nbefore %q\nafter  %q", before, after)
	}
	if n := strings.Count(g.logs.String(), "path outside the root refused"); n < 20 {
		t.Errorf("%d escapes logged", n)
	}
}

// TestConfinedEscapeBans: escapes count towards the address's ban.
func TestConfinedEscapeBans(t *testing.T) {
	g := startConfined(t, confinedAccess, func(c *proxy.Config) {
		c.Bans = policy.BanConfig{MaxFailures: 3, Duration: time.Minute}
	})
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	c.do("CWD ..", wire.StatusFileUnavailable)
	c.do(`RETR ..\x`, wire.StatusFileUnavailable) // refused, not an escape: not counted
	c.do("RETR ../x", wire.StatusFileUnavailable)
	c.do("CDUP", wire.StatusFileUnavailable)
	c.expect(wire.StatusNotAvailable)
}

// TestUnconfinedUser: a user no profile names is relayed as before.
func TestUnconfinedUser(t *testing.T) {
	g := startConfined(t, &vfs.Access{Profiles: map[string]vfs.Profile{"p": {Root: "/partners/%s"}}, Users: map[string]string{"someone": "p"}})
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	c.do("CWD partners", 250)
	if rep := c.do("PWD", wire.StatusPathCreated); !strings.HasPrefix(rep.Text(), `"/partners"`) {
		t.Errorf("PWD %q", rep.Text())
	}
	c.do("CWD ..", 250)
}

// TestConfinedRootMissing: a root the backend refuses ends the session.
func TestConfinedRootMissing(t *testing.T) {
	g := startConfined(t, &vfs.Access{Profiles: map[string]vfs.Profile{"p": {Root: "/nowhere/%s"}}, Default: "p"})
	c := dialRaw(t, g.addr("explicit"), false)
	c.startTLS()
	c.do("USER "+user, wire.StatusUserOK)
	c.do("PASS "+password, wire.StatusNotAvailable)
}

// groupAuth decides at the edge and names the user's groups.
type groupAuth struct{}

func (groupAuth) Authenticate(_ context.Context, r auth.Request) (auth.Result, error) {
	if r.User == "partner" && r.Password == "edge-Pa55" {
		return auth.Result{User: "partner", Groups: []string{"staff", "partners"}, Backend: auth.Credentials{User: user, Password: password}}, nil
	}
	return auth.Result{}, auth.ErrDenied
}

// TestConfinedEdgeGroups: with an authenticator that decides at the edge,
// the profile comes from the user's groups, and the root from the edge
// user's name, not the backend account's.
func TestConfinedEdgeGroups(t *testing.T) {
	access := &vfs.Access{
		Profiles: map[string]vfs.Profile{"partner": {Root: "/partners/%s"}},
		Groups:   []vfs.GroupProfile{{Group: "partners", Profile: "partner"}},
	}
	g := startConfinedWith(t, access, []proxy.Option{proxy.WithAuthenticator(groupAuth{})})
	c := dialRaw(t, g.addr("explicit"), false)
	c.startTLS()
	c.do("USER partner", wire.StatusUserOK)
	c.do("PASS edge-Pa55", wire.StatusLoggedIn)
	c.do("MKD mine", wire.StatusPathCreated)
	if _, err := os.Stat(filepath.Join(filepath.Dir(g.home), "partner", "mine")); err != nil {
		t.Errorf("MKD did not land in the group profile's root: %v", err)
	}
	c.do("CDUP", wire.StatusFileUnavailable)
}

// TestRootlessProfile: a profile without a root still resolves paths (the
// rules' hook sees them) but confines to the backend's own tree, from the
// directory the backend starts in.
func TestRootlessProfile(t *testing.T) {
	g := startConfined(t, &vfs.Access{Profiles: map[string]vfs.Profile{"open": {}}, Default: "open"})
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	c.do("CWD partners", 250)
	if rep := c.do("PWD", wire.StatusPathCreated); !strings.HasPrefix(rep.Text(), `"/partners"`) {
		t.Errorf("PWD %q", rep.Text())
	}
	c.do("CWD ..", 250)
	c.do("CWD ..", wire.StatusFileUnavailable)
	c.do(`RETR ..\x`, wire.StatusFileUnavailable)
	if !strings.Contains(g.logs.String(), `"path":"/partners"`) {
		t.Error("no command line with the path")
	}
}
