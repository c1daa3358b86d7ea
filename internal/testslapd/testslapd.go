package testslapd

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // {SSHA} is what slapd's userPassword scheme is
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
)

// EnvInterop is the switch that turns the tests with real programs on.
const EnvInterop = "FTPSGATE_INTEROP"

// Paths of Debian's slapd package.
const (
	SlapdPath = "/usr/sbin/slapd"
	SchemaDir = "/etc/ldap/schema"
	ModuleDir = "/usr/lib/ldap"
)

// The directory every server holds.
const (
	Suffix       = "dc=example,dc=org"
	RootDN       = "cn=admin," + Suffix
	RootPassword = "root-secret"
	PeopleDN     = "ou=people," + Suffix
	GroupsDN     = "ou=groups," + Suffix
)

// startTimeout bounds the wait for a new server to answer.
const startTimeout = 15 * time.Second

// Server is a running slapd.
type Server struct {
	URL      string // ldap://127.0.0.1:PORT
	LDAPSURL string // ldaps://127.0.0.1:PORT2
	// CAFile is the PEM file of the CA that signed the server's
	// certificate (for 127.0.0.1, ::1 and localhost).
	CAFile string
	Dir    string // the server's configuration, database and log

	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
}

// Require skips t unless the interop switch is on; with it on, a missing
// slapd fails t.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvInterop) != "1" {
		t.Skipf("test with a real OpenLDAP slapd: set %s=1 to run it (then a missing slapd is a failure)", EnvInterop)
	}
	for _, p := range []string{SlapdPath, filepath.Join(SchemaDir, "inetorgperson.schema"), filepath.Join(ModuleDir, "memberof.so")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v: install slapd (apt-get install slapd ldap-utils); with %s=1 a missing program is a failure", err, EnvInterop)
		}
	}
}

// Start runs a new slapd with the base entries (the suffix, ou=people,
// ou=groups) and stops it when t ends. It calls Require.
func Start(t testing.TB) *Server {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	pki, err := testpki.WriteServer(dir, "testslapd CA")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	s := &Server{
		URL:      "ldap://127.0.0.1:" + strconv.Itoa(freePort(t)),
		LDAPSURL: "ldaps://127.0.0.1:" + strconv.Itoa(freePort(t)),
		CAFile:   pki.CAFile,
		Dir:      dir,
		logPath:  filepath.Join(dir, "slapd.log"),
		done:     make(chan struct{}),
	}
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, []byte(config(dir, pki)), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// -d keeps slapd in the foreground (the stats level logs connections,
	// binds and searches, for a failing test's output).
	s.cmd = exec.Command(SlapdPath, "-f", conf, "-h", s.URL+"/ "+s.LDAPSURL+"/", "-d", "stats")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting slapd: %v", err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	s.waitReady(t)
	s.AddLDIF(t, fmt.Sprintf(`dn: %s
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: %s
objectClass: organizationalUnit
ou: people

dn: %s
objectClass: organizationalUnit
ou: groups
`, Suffix, PeopleDN, GroupsDN))
	return s
}

func config(dir string, pki *testpki.Files) string {
	var b strings.Builder
	for _, s := range []string{"core", "cosine", "inetorgperson", "nis"} {
		fmt.Fprintf(&b, "include %s\n", filepath.Join(SchemaDir, s+".schema"))
	}
	fmt.Fprintf(&b, `modulepath %s
moduleload back_mdb
moduleload memberof
pidfile %s
argsfile %s
TLSCACertificateFile %s
TLSCertificateFile %s
TLSCertificateKeyFile %s
TLSVerifyClient never

database mdb
suffix %q
rootdn %q
rootpw %s
directory %s
maxsize 16777216

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf

access to attrs=userPassword
	by self write
	by anonymous auth
	by * none
access to *
	by users read
	by anonymous auth
	by * none
`, ModuleDir, filepath.Join(dir, "slapd.pid"), filepath.Join(dir, "slapd.args"),
		pki.CAFile, pki.CertFile, pki.KeyFile,
		Suffix, RootDN, RootPassword, filepath.Join(dir, "db"))
	return b.String()
}

// waitReady waits until the server answers a bind as the rootdn.
func (s *Server) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.rootBind(func(*goldap.Conn) error { return nil })
		if err == nil {
			return
		}
		select {
		case <-s.done:
			t.Fatalf("slapd exited before it answered (%v)\n%s", s.waitErr, s.LogTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not answer within %s: %v\n%s", startTimeout, err, s.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rootBind runs f on a connection bound as the rootdn.
func (s *Server) rootBind(f func(*goldap.Conn) error) error {
	l, err := goldap.DialURL(s.URL, goldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
	if err != nil {
		return err
	}
	defer l.Close()
	l.SetTimeout(5 * time.Second)
	if err := l.Bind(RootDN, RootPassword); err != nil {
		return err
	}
	return f(l)
}

// AddLDIF adds the entries of an LDIF text (content records: "dn:" then
// "attr: value" or "attr:: base64" lines, records apart by blank lines,
// "#" comments, continuation lines starting with a space), in order, as
// the rootdn.
func (s *Server) AddLDIF(t testing.TB, ldif string) {
	t.Helper()
	reqs, err := parseLDIF(ldif)
	if err != nil {
		t.Fatalf("LDIF: %v", err)
	}
	err = s.rootBind(func(l *goldap.Conn) error {
		for _, r := range reqs {
			if err := l.Add(r); err != nil {
				return fmt.Errorf("adding %s: %w", r.DN, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, s.LogTail())
	}
}

// Modify runs f with a connection bound as the rootdn.
func (s *Server) Modify(t testing.TB, f func(*goldap.Conn) error) {
	t.Helper()
	if err := s.rootBind(f); err != nil {
		t.Fatal(err)
	}
}

// Kill ends slapd at once (SIGKILL) and waits for it; the ports stop
// answering.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("slapd did not end after SIGKILL")
	}
}

// Restart starts slapd again after Kill: the same configuration, ports and
// database, as when a directory server is restarted. It waits until the
// server answers.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	select {
	case <-s.done:
	default:
		t.Fatal("testslapd: Restart while slapd runs (Kill it first)")
	}
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(s.cmd.Path, s.cmd.Args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A killed slapd leaves its pid file; slapd refuses nothing for it,
	// but remove it so the new one writes its own.
	_ = os.Remove(filepath.Join(s.Dir, "slapd.pid"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("restarting slapd: %v", err)
	}
	s.cmd, s.done, s.waitErr = cmd, make(chan struct{}), nil
	done := s.done
	go func() { s.waitErr = cmd.Wait(); close(done) }()
	s.waitReady(t)
}

// Freeze stops slapd (SIGSTOP) without closing anything: its sockets
// accept connections into their backlog and nothing answers, as with a
// directory that hangs. Thaw resumes it.
func (s *Server) Freeze(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The stop takes effect when each thread next runs, which on a busy
	// machine can be after kill returns: wait until every thread shows it.
	deadline := time.Now().Add(5 * time.Second)
	for !s.stopped() {
		if time.Now().After(deadline) {
			t.Fatalf("slapd (pid %d) not stopped 5s after SIGSTOP", s.cmd.Process.Pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stopped says whether every thread of slapd is stopped (state T in
// /proc/PID/task/TID/stat); true where /proc cannot tell.
func (s *Server) stopped() bool {
	dir := filepath.Join("/proc", strconv.Itoa(s.cmd.Process.Pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if err != nil {
			continue // the thread ended
		}
		// "tid (comm) S ...": the state follows the last ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) {
			return true
		}
		if st := b[i+2]; st != 'T' && st != 't' {
			return false
		}
	}
	return true
}

// Thaw resumes a frozen slapd (SIGCONT).
func (s *Server) Thaw(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// stop ends slapd: SIGTERM, then SIGKILL after a few seconds.
func (s *Server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT) // if frozen
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// LogTail is the end of slapd's log.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(s.logPath)
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return "--- slapd log (end) ---\n" + string(b)
}

// SSHA returns password as a salted SHA-1 userPassword value ({SSHA}).
func SSHA(password string) string {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	h := sha1.New() //nolint:gosec // the {SSHA} scheme
	h.Write([]byte(password))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// parseLDIF parses content records into add requests.
func parseLDIF(text string) ([]*goldap.AddRequest, error) {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.HasPrefix(line, " ") && len(lines) > 0 && lines[len(lines)-1] != "" {
			lines[len(lines)-1] += line[1:]
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, line)
	}
	lines = append(lines, "")
	var reqs []*goldap.AddRequest
	var cur *goldap.AddRequest
	attrs := map[string][]string{}
	var order []string
	for i, line := range lines {
		if line == "" {
			if cur != nil {
				for _, a := range order {
					cur.Attribute(a, attrs[a])
				}
				reqs = append(reqs, cur)
			}
			cur, attrs, order = nil, map[string][]string{}, nil
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: no colon: %q", i+1, line)
		}
		if strings.HasPrefix(value, ":") {
			v, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value[1:]))
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", i+1, err)
			}
			value = string(v)
		} else {
			value = strings.TrimPrefix(value, " ")
		}
		if cur == nil {
			if !strings.EqualFold(name, "dn") {
				return nil, fmt.Errorf("line %d: a record must start with a dn line", i+1)
			}
			cur = goldap.NewAddRequest(value, nil)
			continue
		}
		if _, seen := attrs[name]; !seen {
			order = append(order, name)
		}
		attrs[name] = append(attrs[name], value)
	}
	if len(reqs) == 0 {
		return nil, errors.New("no entries")
	}
	return reqs, nil
}
