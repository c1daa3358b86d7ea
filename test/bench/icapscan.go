package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testicap"
)

// The ICAP scanner of the inspection part: Debian's c-icap with its
// virus_scan service in simple mode (the verdict after the whole body)
// over ClamAV's clamd, as internal/testicap runs it for the tests, but
// started by the bench (its own process groups, Pdeathsig, stopped at
// exit) and with the size limits raised to cover the big file, so that
// every byte is scanned: c-icap's virus_scan.MaxObjectSize, clamd's
// MaxFileSize, MaxScanSize and StreamMaxLength. clamd's cache of clean
// files is off (DisableCache): the bench moves the same file again and
// again, and with the cache every scan after the first found its hash
// there and skipped the scan (one full run: 11.3 s/GiB of scanner CPU for
// the first 1 GiB download, 3.7-4.7 for the next transfers), which a
// gateway's new files never do. ClamAV's database is one
// hash signature made offline by sigtool for a file of random bytes
// (nothing downloaded), which no transfer of the bench matches: every scan
// is clean.

// icapService is the virus_scan alias in simple mode.
const icapService = "avscan"

// scanner is a running clamd and c-icap.
type scanner struct {
	url          string // the ICAP service
	clamd, cicap *process
}

// cpu is the CPU of c-icap (its master and children) and clamd.
func (s *scanner) cpu() cpuMeter {
	ci, cl := treeCPU(s.cicap.pid()), treeCPU(s.clamd.pid())
	return func() (time.Duration, error) {
		a, err := ci()
		if err != nil {
			return 0, fmt.Errorf("c-icap: %w", err)
		}
		b, err := cl()
		if err != nil {
			return 0, fmt.Errorf("clamd: %w", err)
		}
		return a + b, nil
	}
}

// scannerMissing says which program is missing, "" if none.
func scannerMissing() string {
	for _, p := range []string{testicap.CICAPPath, testicap.ClamdPath, testicap.SigtoolBin} {
		if _, err := os.Stat(p); err != nil {
			return p + " is not installed (apt-get install c-icap libc-icap-mod-virus-scan clamav clamav-daemon)"
		}
	}
	if testicap.ModuleDir() == "" {
		return "c-icap's virus_scan.so is not installed (apt-get install libc-icap-mod-virus-scan)"
	}
	return ""
}

// startScanner writes the configurations in DIR/icap, starts clamd and
// waits for its PING, then c-icap and waits until the service answers
// OPTIONS.
func startScanner(ctx context.Context, e *env, maxSize int64) (*scanner, error) {
	if why := scannerMissing(); why != "" {
		return nil, errors.New(why)
	}
	dir := filepath.Join(e.dir, "icap")
	db, tmp := filepath.Join(dir, "db"), filepath.Join(dir, "tmp")
	for _, d := range []string{dir, db, tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	sample := filepath.Join(dir, "sample.bin")
	if err := os.WriteFile(sample, []byte(rand.Text()+rand.Text()), 0o600); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, testicap.SigtoolBin, "--sha256", sample).Output()
	if err != nil {
		return nil, fmt.Errorf("sigtool --sha256: %w", err)
	}
	parts := strings.SplitN(strings.TrimSpace(string(out)), ":", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("sigtool --sha256: unexpected output %q", out)
	}
	if err := os.WriteFile(filepath.Join(db, "bench.hsb"), fmt.Appendf(nil, "%s:%s:Ftpsgate.Bench.Sig\n", parts[0], parts[1]), 0o600); err != nil {
		return nil, err
	}
	mb := maxSize>>20 + 1
	sock := filepath.Join(dir, "clamd.sock")
	clamdConf := filepath.Join(dir, "clamd.conf")
	cc := fmt.Sprintf("Foreground yes\nLocalSocket %s\nDatabaseDirectory %s\nLogFile %s\nTemporaryDirectory %s\nSelfCheck 0\nUser root\n"+
		"MaxFileSize %dM\nMaxScanSize %dM\nStreamMaxLength %dM\nDisableCache yes\n",
		sock, db, filepath.Join(dir, "clamd.log"), tmp, mb, mb, mb)
	if err := os.WriteFile(clamdConf, []byte(cc), 0o600); err != nil {
		return nil, err
	}
	s := &scanner{}
	if s.clamd, err = startProcess("clamd", filepath.Join(dir, "clamd.out"), nil, testicap.ClamdPath, "-c", clamdConf); err != nil {
		return nil, err
	}
	if err := waitReady(ctx, s.clamd, func() error { return pingClamd(sock) }); err != nil {
		s.stop()
		return nil, fmt.Errorf("clamd did not start: %w", err)
	}
	port, err := freePort()
	if err != nil {
		s.stop()
		return nil, err
	}
	addr := loopback(port)
	conf := filepath.Join(dir, "c-icap.conf")
	ic := fmt.Sprintf(`PidFile %[1]s/c-icap.pid
CommandsSocket %[1]s/c-icap.ctl
Timeout 60
Port %[2]s
StartServers 1
MaxServers 2
MinSpareThreads 2
MaxSpareThreads 8
ThreadsPerChild 8
MaxKeepAliveRequests 100
KeepAliveTimeout 60
TmpDir %[3]s
ServerLog %[1]s/server.log
AccessLog %[1]s/access.log
ModulesDir %[4]s
ServicesDir %[4]s
TemplateDir /usr/share/c_icap/templates/
TemplateDefaultLanguage en
LoadMagicFile /etc/c-icap/c-icap.magic
DebugLevel 1
User root
Group root
Module common clamd_mod.so
clamd_mod.ClamdSocket %[5]s
Service virus_scan virus_scan.so
ServiceAlias %[6]s virus_scan?allow204=on&sizelimit=off&mode=simple
virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GIF JPEG MSOFFICE
virus_scan.DefaultEngine clamd
virus_scan.MaxObjectSize %[7]dM
`, dir, addr, tmp, testicap.ModuleDir(), sock, icapService, mb)
	if err := os.WriteFile(conf, []byte(ic), 0o600); err != nil {
		s.stop()
		return nil, err
	}
	if s.cicap, err = startProcess("c-icap", filepath.Join(dir, "c-icap.out"), nil, testicap.CICAPPath, "-N", "-f", conf); err != nil {
		s.stop()
		return nil, err
	}
	if err := waitReady(ctx, s.cicap, func() error { return icapOptions(addr) }); err != nil {
		s.stop()
		return nil, fmt.Errorf("c-icap did not start: %w", err)
	}
	s.url = "icap://" + addr + "/" + icapService
	return s, nil
}

func (s *scanner) stop() {
	for _, p := range []*process{s.cicap, s.clamd} {
		if p != nil {
			p.stop()
		}
	}
}

// waitReady polls ready until it succeeds, p exits, or a minute (or ctx)
// ends.
func waitReady(ctx context.Context, p *process, ready func() error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%v): %s", p.name, p.err, p.lastLogLine())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%v: %s", err, p.lastLogLine())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func pingClamd(sock string) error {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("zPING\x00")); err != nil {
		return err
	}
	b := make([]byte, 16)
	n, _ := c.Read(b)
	if !bytes.HasPrefix(b[:n], []byte("PONG")) {
		return fmt.Errorf("clamd answered %q to PING", b[:n])
	}
	return nil
}

// icapOptions asks the service's OPTIONS and wants a 200.
func icapOptions(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "OPTIONS icap://%s/%s ICAP/1.0\r\nHost: 127.0.0.1\r\nEncapsulated: null-body=0\r\n\r\n", addr, icapService)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "ICAP/1.0 200") {
		return errors.New("OPTIONS answered " + strings.TrimSpace(line))
	}
	return nil
}
