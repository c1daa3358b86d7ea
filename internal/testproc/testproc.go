package testproc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Process is a program started by a test.
type Process struct {
	Name    string
	LogPath string // its stdout and stderr
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // Wait's result, set before done is closed
}

// Start runs argv with env added to the test's environment, output to
// logPath (appended, so a restarted process keeps one log). t.Cleanup kills
// its process group.
func Start(t testing.TB, name, logPath string, env []string, argv ...string) *Process {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Own process group, so cleanup kills the program's children too; and
	// killed with the test binary if that dies first (go test -timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.Kill() != nil {
			t.Errorf("%s (pid %d) did not die after SIGKILL", name, cmd.Process.Pid)
		}
	})
	return p
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is Wait's result once the process has ended.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Signal sends sig to the process (not its group).
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill kills the process group and waits up to 10 s for the process.
func (p *Process) Kill() error {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	return p.Wait(10 * time.Second)
}

// Wait waits up to d for the process to end.
func (p *Process) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("%s (pid %d) still running after %s", p.Name, p.Pid(), d)
	}
}

// WaitExit waits up to d for the process to end and returns its exit code.
func (p *Process) WaitExit(d time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

// Log is everything the process wrote.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.LogPath, err)
	}
	return string(b)
}

// LogTail is the end of the log under a heading, for failure messages.
func (p *Process) LogTail() string { return Tail(p.Name+" log "+p.LogPath, p.Log(), 6000) }

// Tail returns at most n trailing bytes of s under a heading.
func Tail(heading, s string, n int) string {
	if len(s) > n {
		s = "...\n" + s[len(s)-n:]
	}
	return "----- " + heading + " -----\n" + s + "\n----- end -----"
}

// WaitPort waits until addr accepts TCP connections, failing t when p
// exits first or ctx ends.
func WaitPort(ctx context.Context, t testing.TB, addr string, p *Process) {
	t.Helper()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if p.Exited() {
			t.Fatalf("%s exited before %s accepted connections (%v)\n%s", p.Name, addr, p.Err(), p.LogTail())
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %s did not accept connections: %v\n%s", p.Name, addr, err, p.LogTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
