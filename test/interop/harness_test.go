package interop

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

// envInterop is the switch that turns the interop tests on.
const envInterop = "FTPSGATE_INTEROP"

// envResults names a file the table of results is written to.
const envResults = "FTPSGATE_INTEROP_RESULTS"

// bigFileSize is the size of the file every round trip moves both ways.
const bigFileSize = 64 << 20

// workDir is a directory shared by all tests of one run (TestMain). Its mode
// lets the unprivileged FTP user reach the directories vsftpd serves.
var workDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if !interopEnabled() {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "ftpsgate-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o711); err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	workDir = dir
	code := m.Run()
	results.report(os.Stdout, os.Getenv(envResults))
	return code
}

func interopEnabled() bool { return os.Getenv(envInterop) == "1" }

// requireInterop skips t unless the interop switch is on. With the switch on
// the tests need root (to create the FTP user).
func requireInterop(t *testing.T) {
	t.Helper()
	if !interopEnabled() {
		t.Skipf("interop test with real vsftpd and curl: set %s=1 to run it (then a missing program is a failure)", envInterop)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s=1 needs root: the vsftpd backend logs in as a local user the test creates", envInterop)
	}
}

// requireProgram returns the path of a program, looked up in PATH and then in
// the extra directories. A missing program fails the test (the switch is on).
func requireProgram(t *testing.T, name string, dirs ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("%s not found (PATH and %v); install it (apt-get install %s) — with %s=1 a missing program is a failure",
		name, dirs, name, envInterop)
	return ""
}

// testContext returns a context that ends after d or when t ends.
func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newDir makes a fresh directory under workDir with the given mode.
func newDir(t *testing.T, pattern string, mode os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp(workDir, pattern)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Port ranges for passive data connections come from above Linux's default
// ephemeral range (32768-60999), so they never collide with the client ports
// of curl or the listeners picked by freePort.
const (
	rangeBase  = 61000
	rangeLimit = 65500
	rangeBlock = 50
)

// rangeBlocks are the blocks of 50 ports: rangeInUse marks those a running
// test holds (released at its end), rangeNext is where the search goes on.
// A run has more tests than the range has blocks, so blocks are reused
// once the test that held one has ended.
var (
	rangeMu    sync.Mutex
	rangeInUse = map[int]bool{}
	rangeNext  int
)

const rangeBlocks = (rangeLimit - rangeBase + 1) / rangeBlock

// portRange reserves n consecutive ports on 127.0.0.1, distinct from every
// range another running test of this run holds, and all bindable right
// now; the block is released when t ends.
func portRange(t *testing.T, n int) (lo, hi int) {
	t.Helper()
	if n > rangeBlock {
		t.Fatalf("portRange: %d ports asked, at most %d", n, rangeBlock)
	}
	rangeMu.Lock()
	defer rangeMu.Unlock()
	for tries := 0; tries < rangeBlocks; tries++ {
		b := rangeNext
		rangeNext = (rangeNext + 1) % rangeBlocks
		if rangeInUse[b] {
			continue
		}
		lo = rangeBase + b*rangeBlock
		hi = lo + n - 1
		if rangeBindable(lo, hi) {
			rangeInUse[b] = true
			t.Cleanup(func() {
				rangeMu.Lock()
				delete(rangeInUse, b)
				rangeMu.Unlock()
			})
			return lo, hi
		}
	}
	t.Fatal("portRange: no free block of ports left")
	return 0, 0
}

func rangeBindable(lo, hi int) bool {
	for p := lo; p <= hi; p++ {
		ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

// process is a program started by a test (internal/testproc), in its own
// process group, with stdout and stderr in a log file. t.Cleanup kills the
// whole group.
type process = testproc.Process

// startProcess starts argv with the test's environment, its output in a
// fresh logPath.
func startProcess(t *testing.T, name, logPath string, argv ...string) *process {
	t.Helper()
	if err := os.WriteFile(logPath, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	return testproc.Start(t, name, logPath, nil, argv...)
}

// waitForPort waits until addr accepts TCP connections, the process exits, or
// ctx ends.
var waitForPort = testproc.WaitPort

// tail returns at most n trailing bytes of s under a heading.
var tail = testproc.Tail

// bigSource is the 64 MiB random file every round trip uploads, made once,
// with its SHA-256.
var bigSource = sync.OnceValues(func() ([2]string, error) {
	path := filepath.Join(workDir, "source-64MiB.bin")
	sum, err := testproc.RandomFile(path, bigFileSize)
	return [2]string{path, sum}, err
})

// sourceFile returns the path and the SHA-256 of the shared random file.
func sourceFile(t *testing.T) (path, sum string) {
	t.Helper()
	src, err := bigSource()
	if err != nil {
		t.Fatalf("random source file: %v", err)
	}
	return src[0], src[1]
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	sum, err := testproc.SHA256File(path)
	if err != nil {
		t.Fatalf("sha256 %s: %v", path, err)
	}
	return sum
}

// assertSameFile fails t unless got has the SHA-256 want (and says which
// sizes differ, which usually tells truncation from corruption).
func assertSameFile(t *testing.T, what, got, want string, wantSize int64) {
	t.Helper()
	sum := sha256File(t, got)
	if sum == want {
		return
	}
	size := int64(-1)
	if st, err := os.Stat(got); err == nil {
		size = st.Size()
	}
	t.Errorf("%s: SHA-256 of %s is %s, want %s (size %d, want %d)", what, got, sum, want, size, wantSize)
}

// cellStatus is the outcome of one matrix cell.
type cellStatus string

const (
	statusPass  cellStatus = "pass"
	statusFail  cellStatus = "FAIL"
	statusKnown cellStatus = "known" // a known limitation, still failing the way it is listed
	statusNA    cellStatus = "n/a"   // the client cannot do this mode at all
)

// cellResult is one client × backend × mode × ops cell of the matrix.
type cellResult struct {
	Client, Backend, Mode string
	Ops                   opSet
	Status                cellStatus
	Note                  string
	Duration              time.Duration
}

// resultTable collects the outcome of the matrix cases for the run's summary.
type resultTable struct {
	mu    sync.Mutex
	rows  []string
	cells []cellResult
}

var results resultTable

// record registers t's outcome in the summary table when t ends.
func (r *resultTable) record(t *testing.T) {
	t.Cleanup(func() {
		status := "pass"
		switch {
		case t.Failed():
			status = "FAIL"
		case t.Skipped():
			status = "skip"
		}
		r.mu.Lock()
		r.rows = append(r.rows, fmt.Sprintf("%-56s %s", t.Name(), status))
		r.mu.Unlock()
	})
}

// addCell registers one cell of the client × backend × mode matrix.
func (r *resultTable) addCell(c cellResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cells = append(r.cells, c)
}

func (r *resultTable) report(w io.Writer, file string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rows) == 0 && len(r.cells) == 0 {
		return
	}
	var b strings.Builder
	if len(r.rows) > 0 {
		b.WriteString("interop results (curl -> [ftpsgate ->] vsftpd):\n")
		slices.Sort(r.rows)
		for _, row := range r.rows {
			b.WriteString("  " + row + "\n")
		}
	}
	if len(r.cells) > 0 {
		b.WriteString("\ninterop matrix (client -> ftpsgate -> backend), mode = front/data/TLS on the front:\n")
		b.WriteString(r.matrixText())
	}
	fmt.Fprint(w, b.String())
	if file != "" {
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "interop: write results:", err)
		}
	}
	if md := os.Getenv(envCompat); md != "" {
		if err := os.WriteFile(md, []byte(r.matrixMarkdown()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "interop: write compatibility table:", err)
		}
	}
}

// envCompat names a file the Markdown compatibility table is written to
// (test/interop/COMPAT.md is generated this way).
const envCompat = "FTPSGATE_INTEROP_COMPAT"

// sortedCells orders the cells as the matrix lists them.
func (r *resultTable) sortedCells() []cellResult {
	order := func(list []string, v string) int {
		if i := slices.Index(list, v); i >= 0 {
			return i
		}
		return len(list)
	}
	var backends, clients, modes []string
	for _, b := range matrixBackends {
		backends = append(backends, b.String())
	}
	for _, c := range matrixClients {
		clients = append(clients, c.Name())
	}
	for _, m := range cellModes {
		modes = append(modes, m.String())
	}
	ops := []string{string(opsBasic), string(opsFull), string(opsBig), string(opsTree)}
	cells := slices.Clone(r.cells)
	slices.SortStableFunc(cells, func(a, b cellResult) int {
		for _, d := range []int{
			order(backends, a.Backend) - order(backends, b.Backend),
			order(clients, a.Client) - order(clients, b.Client),
			order(ops, string(a.Ops)) - order(ops, string(b.Ops)),
			order(modes, a.Mode) - order(modes, b.Mode),
		} {
			if d != 0 {
				return d
			}
		}
		return 0
	})
	return cells
}

// matrixText is one line per cell, then the counts and the notes of the
// failures, the known limitations and the cells that do not apply.
func (r *resultTable) matrixText() string {
	var b strings.Builder
	count := map[cellStatus]int{}
	for _, c := range r.sortedCells() {
		count[c.Status]++
		line := fmt.Sprintf("  %-20s %-18s %-6s %-24s %-5s %6.1fs", c.Backend, c.Client, c.Ops, c.Mode, c.Status, c.Duration.Seconds())
		if c.Note != "" && c.Status != statusPass {
			line += "  " + firstLine(c.Note, 150)
		}
		b.WriteString(line + "\n")
	}
	fmt.Fprintf(&b, "  cells: %d pass, %d FAIL, %d known limitation, %d n/a\n",
		count[statusPass], count[statusFail], count[statusKnown], count[statusNA])
	return b.String()
}

// matrixMarkdown is the compatibility table: per backend and client, the
// status of every mode for the basic operations, and of the full and big
// operation sets.
func (r *resultTable) matrixMarkdown() string {
	var b strings.Builder
	b.WriteString("# ftpsgate compatibility (generated)\n\n")
	b.WriteString("Generated by `FTPSGATE_INTEROP=1 FTPSGATE_INTEROP_COMPAT=test/interop/COMPAT.md go test -count=1 ./test/interop/` ")
	b.WriteString("(see `test/interop/doc.go`). Mode = gateway front / data connection / TLS version on the front. ")
	b.WriteString("`basic` and `full` are the operation sets of doc.go; `big` is a 256 MiB file up and down; ")
	b.WriteString("`tree` is rclone's copy, check --download, sync and purge of a 20-file tree with 8 transfers and 8 checkers (TestRcloneMatrix).\n\n")
	b.WriteString("| backend | client | ops |")
	for _, m := range cellModes {
		b.WriteString(" " + m.String() + " |")
	}
	b.WriteString("\n|---|---|---|" + strings.Repeat("---|", len(cellModes)) + "\n")
	type rowKey struct {
		backend, client string
		ops             opSet
	}
	var rows []rowKey
	byRow := map[rowKey]map[string]cellResult{}
	for _, c := range r.sortedCells() {
		k := rowKey{c.Backend, c.Client, c.Ops}
		if byRow[k] == nil {
			byRow[k] = map[string]cellResult{}
			rows = append(rows, k)
		}
		byRow[k][c.Mode] = c
	}
	var notes []string
	for _, k := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |", k.backend, k.client, k.ops)
		for _, m := range cellModes {
			c, ok := byRow[k][m.String()]
			switch {
			case !ok:
				b.WriteString(" |")
			case c.Status == statusPass:
				b.WriteString(" pass |")
			default:
				notes = append(notes, fmt.Sprintf("%s, %s, %s, %s: %s — %s", c.Backend, c.Client, c.Ops, c.Mode, c.Status, firstLine(c.Note, 300)))
				fmt.Fprintf(&b, " %s [%d] |", c.Status, len(notes))
			}
		}
		b.WriteString("\n")
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for i, n := range notes {
			fmt.Fprintf(&b, "%d. %s\n", i+1, n)
		}
	}
	return b.String()
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
