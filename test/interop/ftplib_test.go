package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ftplibKind is Python's ftplib.FTP_TLS (testdata/ftplib_client.py, run
// with Debian's python3). With resume, data connections resume the control
// connection's TLS session (session=self.sock.session in ntransfercmd);
// without it, stock ftplib, they do full handshakes.
type ftplibKind struct{ resume bool }

func (k ftplibKind) Name() string {
	if k.resume {
		return "ftplib+resume"
	}
	return "ftplib"
}

func (ftplibKind) Unsupported(cellMode) string { return "" }

func (k ftplibKind) Run(ctx context.Context, c *cell, ops opSet) {
	host, port := hostPort(c.t, c.addr())
	spec := map[string]any{
		"host": host, "port": port, "front": c.mode.Front, "data": c.mode.Data, "tls": c.mode.TLS,
		"resume": k.resume, "user": c.srv.User.Name, "password": c.srv.User.Password,
		"ops": ops, "dir": c.Dir, "dst": c.Local,
		"src": c.fx.Src, "zero": c.fx.Zero, "part1": c.fx.Part1, "part2": c.fx.Part2,
		"big": c.fx.Big, "rest": c.fx.Rest,
	}
	b, err := json.Marshal(spec)
	if err != nil {
		c.errorf("%v", err)
		return
	}
	specPath := filepath.Join(c.t.TempDir(), "spec.json")
	if err := os.WriteFile(specPath, b, 0o600); err != nil {
		c.errorf("%v", err)
		return
	}
	script, err := filepath.Abs(filepath.Join("testdata", "ftplib_client.py"))
	if err != nil {
		c.errorf("%v", err)
		return
	}
	cmd := exec.CommandContext(ctx, systemPython, script, specPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	c.logf("$ python3 ftplib_client.py (%s, %s)\n%s", k.Name(), ops, out.String())
	if err != nil {
		c.errorf("ftplib: %v: %s", err, lastLines(out.String(), 3))
		return
	}
	switch ops {
	case opsBig:
		c.expectServerFile("big.bin", c.fx.Big)
		c.expectLocalFile("big.bin", c.fx.Big)
		return
	}
	c.expectServerAbsent("sub")
	c.expectLocalFile("seed.bin", c.fx.Seed)
	if ops != opsFull {
		c.expectServerFile("up.bin", c.fx.Src)
		return
	}
	c.expectServerFile("dir ü space/file ü space.bin", c.fx.Src)
	c.expectLocalFile("utf8.bin", c.fx.Src)
	c.expectServerFile("zero.bin", c.fx.Zero)
	c.expectLocalFile("zero.bin", c.fx.Zero)
	c.expectServerFile("app.bin", c.fx.App)
	c.expectServerFile("rs.bin", c.fx.Src)
	seed, _ := os.ReadFile(c.fx.Seed)
	c.expectLocalSum("seed-tail.bin", sumBytes(seed[c.fx.Rest:]), int64(len(seed))-c.fx.Rest)
	c.expectServerFile("renamed.bin", c.fx.Src)
	c.expectServerAbsent("gone.bin")
	c.expectLocalFile("seed-after-abor.bin", c.fx.Seed)
}

// lastLines is the last n non-empty lines of s, joined with " | ".
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
