package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a program the bench started, in its own process group, with
// stdout and stderr in a log file. Killing it kills the whole group (vsftpd
// and proftpd fork a process per session).
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // Wait's result, set before done is closed
}

// procs is every process started, for the cleanup at exit.
var procs struct {
	sync.Mutex
	list []*process
}

func startProcess(name, logPath string, env []string, argv ...string) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = f
	cmd.Stderr = f
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	// Own process group, so one kill reaches the session processes too; and
	// SIGKILL if the bench dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	procs.Lock()
	procs.list = append(procs.list, p)
	procs.Unlock()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop kills the process group and every descendant that left it, and waits
// (bounded) for the process to be reaped.
func (p *process) stop() {
	pids := descendants(p.pid())
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(os.Stderr, "bench: %s (pid %d) did not die after SIGKILL\n", p.name, p.pid())
	}
}

// terminate sends SIGTERM to the process (a graceful stop: the gateway
// drains its audit trail) and waits up to wait for it to exit, then kills
// whatever is left. It reports whether the process exited by itself.
func (p *process) terminate(wait time.Duration) bool {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	exited := false
	select {
	case <-p.done:
		exited = true
	case <-time.After(wait):
	}
	p.stop()
	return exited
}

// stopAll kills every process the bench started, newest first.
func stopAll() {
	procs.Lock()
	list := procs.list
	procs.list = nil
	procs.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop()
	}
}

// logTail is the end of the process's log, for error messages.
func (p *process) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	s := string(b)
	if len(s) > 3000 {
		s = "..." + s[len(s)-3000:]
	}
	return fmt.Sprintf("--- %s log %s ---\n%s\n--- end ---", p.name, p.logPath, s)
}

// lastLogLine is the last non-empty line of the process's log.
func (p *process) lastLogLine() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	return lastLine(b)
}

// waitForPort waits until addr accepts TCP connections, the process exits,
// or ctx ends.
func waitForPort(ctx context.Context, addr string, p *process) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited before %s accepted connections (%v): %s\n%s", p.name, addr, p.err, p.lastLogLine(), p.logTail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s did not accept connections: %v\n%s", p.name, addr, err, p.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// clockTick is USER_HZ, the unit of the times in /proc/<pid>/stat. It is
// 100 on every Linux architecture Go supports.
const clockTick = 100

// procStat holds the fields of /proc/<pid>/stat the bench reads.
type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime int64 // clock ticks
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name is in parentheses and may hold spaces: split after
	// the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var s procStat
	s.ppid, _ = strconv.Atoi(f[1])
	nums := []*int64{&s.utime, &s.stime, &s.cutime, &s.cstime}
	for k, p := range nums {
		if *p, err = strconv.ParseInt(f[11+k], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return s, nil
}

// allStats reads /proc/*/stat once.
func allStats() map[int]procStat {
	ents, _ := os.ReadDir("/proc")
	m := make(map[int]procStat, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := readStat(pid); err == nil {
			m[pid] = s
		}
	}
	return m
}

// descendants returns the pids below root (not root itself).
func descendants(root int) []int {
	return treeOf(allStats(), root)[1:]
}

// treeOf returns root and its descendants in stats.
func treeOf(stats map[int]procStat, root int) []int {
	children := map[int][]int{}
	for pid, s := range stats {
		children[s.ppid] = append(children[s.ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// cpuMeter reads the CPU time a server has used so far.
type cpuMeter func() (time.Duration, error)

// processCPU is the user+system time of one process (all its threads): the
// gateway.
func processCPU(pid int) cpuMeter {
	return func() (time.Duration, error) {
		s, err := readStat(pid)
		if err != nil {
			return 0, err
		}
		return ticks(s.utime + s.stime), nil
	}
}

// treeCPU is the user+system time of a forking server: root, its live
// descendants, and (through cutime/cstime) the ones that ended and were
// reaped. proftpd's session processes are children of the master, which
// reaps them.
func treeCPU(root int) cpuMeter {
	return func() (time.Duration, error) {
		stats := allStats()
		rs, ok := stats[root]
		if !ok {
			return 0, fmt.Errorf("process %d is gone", root)
		}
		var t int64
		for _, pid := range treeOf(stats, root) {
			s := stats[pid]
			t += s.utime + s.stime
		}
		t += rs.cutime + rs.cstime
		// Children of session processes (none in proftpd's FTP path) would
		// be counted in their parent's cutime only once reaped.
		return ticks(t), nil
	}
}

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / clockTick }

// memMeter reads the memory a server holds now, in bytes.
type memMeter func() (int64, error)

// rssOf is the resident set of one process (VmRSS): the gateway.
func rssOf(pid int) memMeter {
	return func() (int64, error) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			return 0, err
		}
		return kbField(string(b), "VmRSS:")
	}
}

// treePss is the proportional set size summed over a forking server's
// processes: shared pages (the binary, libraries, copy-on-write memory of
// the parent) count once in total, not once per process.
func treePss(root int) memMeter {
	return func() (int64, error) {
		stats := allStats()
		if _, ok := stats[root]; !ok {
			return 0, fmt.Errorf("process %d is gone", root)
		}
		var total int64
		for _, pid := range treeOf(stats, root) {
			b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
			if err != nil {
				continue // ended meanwhile
			}
			v, err := kbField(string(b), "Pss:")
			if err != nil {
				return 0, err
			}
			total += v
		}
		return total, nil
	}
}

// kbField finds "Key:   123 kB" in a /proc file and returns bytes.
func kbField(s, key string) (int64, error) {
	for _, line := range strings.Split(s, "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			v, err := strconv.ParseInt(f[0], 10, 64)
			return v << 10, err
		}
	}
	return 0, errors.New("no " + key + " line")
}

// raiseNoFile raises RLIMIT_NOFILE to n where it may (raising the hard
// limit needs CAP_SYS_RESOURCE), else to the hard limit, and returns the
// soft limit in force. The servers the bench starts inherit it.
func raiseNoFile(n uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	want := lim
	want.Cur, want.Max = max(lim.Cur, n), max(lim.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
		return want.Cur, nil
	}
	lim.Cur = lim.Max
	// Set explicitly even when unchanged: Go restores the original soft
	// limit in children unless the program set one itself.
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}

// machineBusy is the time every CPU of the machine has spent busy since
// boot (/proc/stat's first line: user, nice, system, irq and softirq; not
// idle, iowait or the hypervisor's steal), summed over the CPUs.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: first line %q", line)
	}
	var ticks int64
	for _, k := range []int{1, 2, 3, 6, 7} { // user nice system irq softirq
		n, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTick, nil
}
