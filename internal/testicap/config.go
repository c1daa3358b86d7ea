package testicap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Config is what a scanner changes from the tests' c-icap and clamd (the
// bench raises the limits and turns the cache off).
type Config struct {
	// MaxSize, when not 0, raises c-icap's virus_scan.MaxObjectSize
	// (otherwise 100M) and clamd's MaxFileSize, MaxScanSize and
	// StreamMaxLength (otherwise clamd's defaults) to cover this many bytes,
	// so that every byte is scanned.
	MaxSize int64
	// DisableCache turns clamd's cache of clean files off (DisableCache
	// yes): with it a file scanned before is found by its hash and not
	// scanned again.
	DisableCache bool
	// Timeout is c-icap's Timeout; 0 is 30 s.
	Timeout time.Duration
	// Root runs both as root (User root, and c-icap's Group root).
	Root bool
}

// Files are the places the configurations name.
type Files struct {
	Run       string // c-icap's pid file and commands socket (a short path)
	Logs      string // clamd.log, c-icap's server.log and access.log
	DB        string // clamd's database directory
	Tmp       string // the temporary files of both
	ClamdSock string // clamd's Unix socket
}

// Missing says which program or module is missing, "" if none.
func Missing() string {
	for _, p := range []string{CICAPPath, ClamdPath, SigtoolBin} {
		if _, err := os.Stat(p); err != nil {
			return p + " is not installed (apt-get install c-icap libc-icap-mod-virus-scan clamav clamav-daemon)"
		}
	}
	if ModuleDir() == "" {
		return "c-icap's virus_scan.so is not installed (apt-get install libc-icap-mod-virus-scan)"
	}
	return ""
}

// WriteSignatures writes each of infected to DIR/sample<i>.bin and one .hsb
// hash signature for each, named prefix<i>, to hsbPath (sigtool --sha256,
// offline). It returns the names ClamAV gives them (Threat).
func WriteSignatures(ctx context.Context, dir, hsbPath, prefix string, infected [][]byte) ([]string, error) {
	var hsb bytes.Buffer
	var threats []string
	for i, data := range infected {
		f := filepath.Join(dir, fmt.Sprintf("sample%d.bin", i))
		if err := os.WriteFile(f, data, 0o600); err != nil {
			return nil, err
		}
		out, err := exec.CommandContext(ctx, SigtoolBin, "--sha256", f).Output()
		if err != nil {
			return nil, fmt.Errorf("sigtool --sha256: %w", err)
		}
		// HASH:SIZE:NAME; the name is the file's: make it ours.
		parts := strings.SplitN(strings.TrimSpace(string(out)), ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("sigtool --sha256: unexpected output %q", out)
		}
		name := fmt.Sprintf("%s%d", prefix, i)
		fmt.Fprintf(&hsb, "%s:%s:%s\n", parts[0], parts[1], name)
		threats = append(threats, name+".UNOFFICIAL")
	}
	if err := os.WriteFile(hsbPath, hsb.Bytes(), 0o600); err != nil {
		return nil, err
	}
	return threats, nil
}

// megabytes is size in whole MiB, rounded up past it.
func megabytes(size int64) int64 { return size>>20 + 1 }

// ClamdConf is clamd's configuration: in the foreground on f.ClamdSock.
func ClamdConf(f Files, c Config) string {
	cc := fmt.Sprintf("Foreground yes\nLocalSocket %s\nDatabaseDirectory %s\nLogFile %s\nTemporaryDirectory %s\nSelfCheck 0\n",
		f.ClamdSock, f.DB, filepath.Join(f.Logs, "clamd.log"), f.Tmp)
	if c.Root {
		cc += "User root\n"
	}
	if c.MaxSize > 0 {
		mb := megabytes(c.MaxSize)
		cc += fmt.Sprintf("MaxFileSize %dM\nMaxScanSize %dM\nStreamMaxLength %dM\n", mb, mb, mb)
	}
	if c.DisableCache {
		cc += "DisableCache yes\n"
	}
	return cc
}

// CICAPConf is c-icap's configuration: on addr (127.0.0.1:port), the
// services ServiceDefault and Service over clamd.
func CICAPConf(f Files, addr string, c Config) string {
	timeout := int64(30)
	if c.Timeout > 0 {
		timeout = int64(c.Timeout / time.Second)
	}
	maxObject := "100M"
	if c.MaxSize > 0 {
		maxObject = fmt.Sprintf("%dM", megabytes(c.MaxSize))
	}
	ic := fmt.Sprintf(`PidFile %[1]s/c-icap.pid
CommandsSocket %[1]s/c-icap.ctl
Timeout %[9]d
Port %[2]s
StartServers 1
MaxServers 2
MinSpareThreads 2
MaxSpareThreads 8
ThreadsPerChild 8
MaxKeepAliveRequests 100
KeepAliveTimeout 60
TmpDir %[3]s
ServerLog %[4]s/server.log
AccessLog %[4]s/access.log
ModulesDir %[5]s
ServicesDir %[5]s
TemplateDir /usr/share/c_icap/templates/
TemplateDefaultLanguage en
LoadMagicFile /etc/c-icap/c-icap.magic
DebugLevel 1
Module common clamd_mod.so
clamd_mod.ClamdSocket %[6]s
Service %[7]s virus_scan.so
ServiceAlias %[8]s virus_scan?allow204=on&sizelimit=off&mode=simple
virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GIF JPEG MSOFFICE
virus_scan.DefaultEngine clamd
virus_scan.MaxObjectSize %[10]s
`, f.Run, addr, f.Tmp, f.Logs, ModuleDir(), f.ClamdSock, ServiceDefault, Service, timeout, maxObject)
	if c.Root {
		ic += "User root\nGroup root\n"
	}
	return ic
}

// PingClamd sends clamd PING on its socket and wants PONG.
func PingClamd(sock string) error {
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

// Options asks Service's OPTIONS at addr and wants a 200.
func Options(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "OPTIONS icap://%s/%s ICAP/1.0\r\nHost: 127.0.0.1\r\nEncapsulated: null-body=0\r\n\r\n", addr, Service)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "ICAP/1.0 200") {
		return errors.New("OPTIONS answered " + strings.TrimSpace(line))
	}
	return nil
}
