package fleet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

// Run is one client program's run.
type Run struct {
	Args   []string
	Output string
	Err    error
}

// String is the command and its output with the password hidden.
func (r Run) String() string {
	return testproc.Tail(strings.Join(r.Args, " "), r.Output, 8000)
}

func (f *Fleet) hide(s string) string { return strings.ReplaceAll(s, f.User.Password, "***") }

func run(ctx context.Context, t testing.TB, f *Fleet, env []string, argv ...string) Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	args := make([]string, len(argv))
	for i, a := range argv {
		args[i] = f.hide(a)
	}
	return Run{Args: args, Output: f.hide(out.String()), Err: err}
}

// Curl runs curl against the balancer with explicit FTPS (--ssl-reqd,
// the fleet's CA), PASV when pasv is set (--disable-epsv), else EPSV, and
// the extra arguments (e.g. -T FILE URL).
func (f *Fleet) Curl(ctx context.Context, t testing.TB, pasv bool, extra ...string) Run {
	t.Helper()
	args := []string{requireProgram(t, "curl"), "-v", "-sS", "--connect-timeout", "15", "--ssl-reqd", "--cacert", f.CAFile,
		"-u", f.User.Name + ":" + f.User.Password}
	if pasv {
		args = append(args, "--disable-epsv")
	}
	return run(ctx, t, f, nil, append(args, extra...)...)
}

// URL is the balancer's URL of a file in the login directory.
func (f *Fleet) URL(name string) string { return "ftp://" + f.Addr + "/" + name }

// Lftp runs an lftp script (its commands after open) against the
// balancer with explicit FTPS, PASV or EPSV.
func (f *Fleet) Lftp(ctx context.Context, t testing.TB, pasv bool, commands ...string) Run {
	t.Helper()
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	epsv := map[bool]string{true: "no", false: "yes"}[pasv]
	script := []string{
		"set cmd:fail-exit yes", "set net:max-retries 1", "set net:timeout 30", "set xfer:clobber on",
		"set ftp:ssl-force true", "set ftp:ssl-protect-data true", "set ftp:passive-mode on",
		"set ftp:prefer-epsv " + epsv, "set ssl:ca-file " + q(f.CAFile),
		fmt.Sprintf("open -u %s,%s ftp://%s", q(f.User.Name), q(f.User.Password), f.Addr),
	}
	script = append(append(script, commands...), "quit")
	dir := t.TempDir()
	path := filepath.Join(dir, "script.lftp")
	if err := os.WriteFile(path, []byte(strings.Join(script, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return run(ctx, t, f, []string{"HOME=" + dir}, requireProgram(t, "lftp"), "-d", "-f", path)
}

var (
	re227 = regexp.MustCompile(`227 [^(]*\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)`)
	re229 = regexp.MustCompile(`229 [^(]*\(\|\|\|(\d+)\|\)`)
)

// PassivePorts are the data ports the 227 and 229 replies in a client's
// output named; a 227 must name the balancer (127.0.0.1).
func PassivePorts(t testing.TB, out string) (pasv, epsv []int) {
	t.Helper()
	for _, m := range re227.FindAllStringSubmatch(out, -1) {
		if host := strings.Join(m[1:5], "."); host != "127.0.0.1" {
			t.Errorf("227 reply names %s, not the balancer 127.0.0.1: %s", host, m[0])
		}
		hi, _ := strconv.Atoi(m[5])
		lo, _ := strconv.Atoi(m[6])
		pasv = append(pasv, hi*256+lo)
	}
	for _, m := range re229.FindAllStringSubmatch(out, -1) {
		p, _ := strconv.Atoi(m[1])
		epsv = append(epsv, p)
	}
	return pasv, epsv
}

// bigFileSize is what the big transfers move each way.
const bigFileSize = 64 << 20

// bigSource is a 64 MiB random file made once per run, with its SHA-256.
var bigSource = sync.OnceValues(func() ([2]string, error) {
	path := filepath.Join(workDir, "source-64MiB.bin")
	sum, err := testproc.RandomFile(path, bigFileSize)
	return [2]string{path, sum}, err
})

// BigFile is the path and SHA-256 of the shared 64 MiB random file.
func BigFile(t testing.TB) (path, sum string) {
	t.Helper()
	s, err := bigSource()
	if err != nil {
		t.Fatal(err)
	}
	return s[0], s[1]
}

// SHA256File is a file's SHA-256 in hex.
func SHA256File(t testing.TB, path string) string {
	t.Helper()
	sum, err := testproc.SHA256File(path)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// ReplicaOfPort is the replica whose passive slice holds port, or nil.
func (f *Fleet) ReplicaOfPort(port int) *Replica {
	for _, r := range f.Replicas {
		if port >= r.PasvLo && port <= r.PasvHi {
			return r
		}
	}
	return nil
}
