package interop

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// curlTimeout bounds one curl run.
const curlTimeout = 120 * time.Second

// curlClient describes how curl reaches an FTP endpoint.
type curlClient struct {
	Addr     string  // host:port of the control connection
	TLS      tlsMode // none: ftp://; explicit: ftp:// with --ssl-reqd; implicit: ftps://
	CAFile   string  // verify the server against this CA; "" means -k (the gateway's self-signed cert)
	PASV     bool    // --disable-epsv: PASV instead of EPSV
	User     string
	Password string
	Extra    []string // more curl arguments, e.g. --limit-rate
}

// curlRun is the outcome of one curl invocation.
type curlRun struct {
	Args     []string
	Output   string // curl -v output (stderr) and stdout
	Err      error  // nil when curl exited 0
	Duration time.Duration
}

// String is the command and its output for failure messages, with the
// password hidden (curl -v shows "> PASS ...").
func (r curlRun) String() string {
	args := append([]string(nil), r.Args...)
	out := r.Output
	for i := 1; i < len(args); i++ {
		if args[i-1] != "-u" {
			continue
		}
		if name, pw, ok := strings.Cut(args[i], ":"); ok && pw != "" {
			args[i] = name + ":***"
			out = strings.ReplaceAll(out, pw, "***")
		}
	}
	return tail("curl "+strings.Join(args, " "), out, 8000)
}

func (c curlClient) url(name string) string {
	scheme := "ftp"
	if c.TLS == tlsImplicit {
		scheme = "ftps"
	}
	return scheme + "://" + c.Addr + "/" + name
}

func (c curlClient) args() []string {
	a := []string{"-v", "-sS", "--connect-timeout", "15", "-u", c.User + ":" + c.Password}
	if c.TLS == tlsExplicit {
		a = append(a, "--ssl-reqd")
	}
	if c.TLS != tlsNone {
		if c.CAFile != "" {
			a = append(a, "--cacert", c.CAFile)
		} else {
			a = append(a, "-k")
		}
	}
	if c.PASV {
		a = append(a, "--disable-epsv")
	}
	return append(a, c.Extra...)
}

// upload stores the local file as name in the login directory.
func (c curlClient) upload(ctx context.Context, t *testing.T, local, name string) curlRun {
	t.Helper()
	return runCurl(ctx, t, append(c.args(), "-T", local, c.url(name)))
}

// download retrieves name into the local file.
func (c curlClient) download(ctx context.Context, t *testing.T, name, local string) curlRun {
	t.Helper()
	return runCurl(ctx, t, append(c.args(), "-o", local, c.url(name)))
}

// startDownload runs a download in the background; the returned function
// waits for curl to end.
func (c curlClient) startDownload(ctx context.Context, t *testing.T, name, local string) func() curlRun {
	t.Helper()
	args := append(c.args(), "-o", local, c.url(name))
	cmd, out := curlCommand(ctx, t, args)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start curl: %v", err)
	}
	return func() curlRun {
		err := cmd.Wait()
		return curlRun{Args: args, Output: out.String(), Err: err, Duration: time.Since(start)}
	}
}

func curlCommand(ctx context.Context, t *testing.T, args []string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	bin := requireProgram(t, "curl")
	ctx, cancel := context.WithTimeout(ctx, curlTimeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	return cmd, &out
}

func runCurl(ctx context.Context, t *testing.T, args []string) curlRun {
	t.Helper()
	cmd, out := curlCommand(ctx, t, args)
	start := time.Now()
	err := cmd.Run()
	return curlRun{Args: args, Output: out.String(), Err: err, Duration: time.Since(start)}
}

// passiveReply is one 227 or 229 reply curl received.
type passiveReply struct {
	Code int
	Host string // 227 only
	Port int
	Line string
}

var (
	re227 = regexp.MustCompile(`(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})`)
	re229 = regexp.MustCompile(`\(\|\|\|(\d{1,5})\|\)`)
)

// passiveReplies parses the "< 227 ..." and "< 229 ..." lines of curl -v.
func passiveReplies(verbose string) ([]passiveReply, error) {
	var out []passiveReply
	for _, line := range strings.Split(verbose, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "< 227"):
			m := re227.FindStringSubmatch(line)
			if m == nil {
				return out, fmt.Errorf("227 reply without six numbers: %q", line)
			}
			var n [6]int
			for i := range n {
				v, err := strconv.Atoi(m[i+1])
				if err != nil || v > 255 {
					return out, fmt.Errorf("227 reply with a bad number: %q", line)
				}
				n[i] = v
			}
			out = append(out, passiveReply{
				Code: 227,
				Host: fmt.Sprintf("%d.%d.%d.%d", n[0], n[1], n[2], n[3]),
				Port: n[4]<<8 | n[5],
				Line: line,
			})
		case strings.HasPrefix(line, "< 229"):
			m := re229.FindStringSubmatch(line)
			if m == nil {
				return out, fmt.Errorf("229 reply without (|||port|): %q", line)
			}
			p, err := strconv.Atoi(m[1])
			if err != nil || p < 1 || p > 65535 {
				return out, fmt.Errorf("229 reply with a bad port: %q", line)
			}
			out = append(out, passiveReply{Code: 229, Port: p, Line: line})
		}
	}
	return out, nil
}

// checkPassive asserts that a curl run used the passive mode it was told to
// (227 for PASV, 229 for EPSV), that every port is inside [lo, hi] and that
// every 227 advertises host.
func checkPassive(t *testing.T, what string, run curlRun, pasv bool, host string, lo, hi int) {
	t.Helper()
	replies, err := passiveReplies(run.Output)
	if err != nil {
		t.Errorf("%s: %v\n%s", what, err, run)
	}
	want := 229
	if pasv {
		want = 227
	}
	seen := false
	for _, r := range replies {
		if r.Code == want {
			seen = true
		}
		if r.Port < lo || r.Port > hi {
			t.Errorf("%s: passive port %d outside %d-%d: %q", what, r.Port, lo, hi, r.Line)
		}
		if r.Code == 227 && r.Host != host {
			t.Errorf("%s: 227 advertises host %s, want %s: %q", what, r.Host, host, r.Line)
		}
	}
	if !seen {
		t.Errorf("%s: no %d reply in curl's output (replies seen: %+v)\n%s", what, want, replies, run)
	}
}
