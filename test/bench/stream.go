package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// phaseStream moves the big file down and up once per target and client,
// timing the client process and reading the proxy's CPU before and after.
func phaseStream(ctx context.Context, e *env, targets []*target) {
	clients := []string{"curl", "lftp"}
	missing := map[string]string{}
	for _, c := range clients {
		if _, err := exec.LookPath(c); err != nil {
			missing[c] = c + " is not installed (apt-get install " + c + ")"
		}
	}
	for _, c := range clients {
		for _, dir := range []string{"download", "upload"} {
			id := "stream/" + c + "/" + dir
			for _, t := range targets {
				switch {
				case t.na != "":
					e.res.na(id+"/mbps", t.key, t.na)
					e.res.na(id+"/cpu", t.key, t.na)
					continue
				case missing[c] != "":
					e.res.na(id+"/mbps", t.key, missing[c])
					e.res.na(id+"/cpu", t.key, missing[c])
					continue
				}
				if ctx.Err() != nil {
					return
				}
				wall, cpu, cpuErr, err := oneStream(ctx, e, t, c, dir, nil)
				if err != nil {
					why := fmt.Sprintf("%s %s via %s failed: %s", c, dir, targetTitle[t.key], oneLine(err))
					logf("%s", why)
					e.res.na(id+"/mbps", t.key, why)
					e.res.na(id+"/cpu", t.key, why)
					continue
				}
				e.res.set(id+"/mbps", t.key, mbps(e.bigSize, wall), "")
				gib := float64(e.bigSize) / (1 << 30)
				switch {
				case t.cpu == nil:
				case cpuErr != nil:
					e.res.na(id+"/cpu", t.key, "CPU not readable: "+oneLine(cpuErr))
				default:
					e.res.set(id+"/cpu", t.key, cpu.Seconds()/gib, "")
				}
				logf("stream %-9s %s %-8s %6.0f MB/s  proxy CPU %.2f s/GiB", t.key, c, dir,
					mbps(e.bigSize, wall), cpu.Seconds()/gib)
			}
		}
	}
}

// oneStream runs one client transfer. Downloads go to /dev/null and their
// size is checked (curl) or the client's exit status is trusted (lftp);
// uploads are compared with the source's SHA-256 afterwards, outside the
// timed part, then removed.
//
// ran, if not nil, is called as soon as the client has exited and the CPU
// has been read (the profiler stops there, before the verification).
func oneStream(ctx context.Context, e *env, t *target, client, dir string, ran func()) (wall, cpu time.Duration, cpuErr, err error) {
	r, err := oneStreamTimed(ctx, e, t, client, dir, ran)
	return r.wall, r.cpu, r.cpuErr, err
}

// streamRun is what one client transfer measured.
type streamRun struct {
	wall, cpu time.Duration
	ttfb      time.Duration // curl downloads: from the start to the first data byte (curl's time_starttransfer); 0 otherwise
	cpuErr    error
}

// oneStreamTimed is oneStream, with curl's time to the first byte of a
// download too.
func oneStreamTimed(ctx context.Context, e *env, t *target, client, dir string, ran func()) (r streamRun, err error) {
	ctx, cancel := context.WithTimeout(ctx, e.streamLimit)
	defer cancel()
	upName := fmt.Sprintf("up-%s-%s.bin", t.key, client)
	upPath := filepath.Join(e.root, upName)
	defer os.Remove(upPath)
	url := "ftp://" + t.addr + "/"
	var argv []string
	switch client {
	case "curl":
		argv = []string{"curl", "-sS", "--ssl-reqd", "--cacert", e.pki.CAFile,
			"-u", e.acct.Name + ":" + e.acct.Password, "--max-time", strconv.Itoa(int(e.streamLimit.Seconds()))}
		if dir == "download" {
			argv = append(argv, "-o", os.DevNull, "-w", curlWriteOut, url+e.bigName)
		} else {
			argv = append(argv, "-T", e.bigPath, url+upName)
		}
	case "lftp":
		script := strings.Join([]string{
			"set ftp:ssl-force true", "set ftp:ssl-protect-data true",
			"set ssl:ca-file " + e.pki.CAFile, "set ssl:verify-certificate true",
			"set net:max-retries 1", "set net:timeout 60", "set cmd:fail-exit true",
			"set xfer:clobber true",
			fmt.Sprintf("open -u %s,%s ftp://%s", e.acct.Name, e.acct.Password, t.addr),
		}, "; ")
		if dir == "download" {
			script += "; get " + e.bigName + " -o " + os.DevNull
		} else {
			script += "; put " + e.bigPath + " -o " + upName
		}
		argv = []string{"lftp", "-c", script}
	}
	settle()
	var cpu0 time.Duration
	if t.cpu != nil {
		cpu0, r.cpuErr = t.cpu()
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	r.wall = time.Since(start)
	settle()
	if t.cpu != nil && r.cpuErr == nil {
		var cpu1 time.Duration
		cpu1, r.cpuErr = t.cpu()
		r.cpu = cpu1 - cpu0
	}
	if ran != nil {
		ran()
	}
	if runErr != nil {
		return streamRun{}, fmt.Errorf("%v: %s", runErr, strings.TrimSpace(stderr.String()))
	}
	if dir == "download" {
		if client == "curl" {
			n, ttfb, err := parseCurlWriteOut(stdout.String())
			if err != nil {
				return streamRun{}, err
			}
			if n != e.bigSize {
				return streamRun{}, fmt.Errorf("curl received %d bytes, want %d", n, e.bigSize)
			}
			r.ttfb = ttfb
		}
		return r, nil
	}
	sum, n, err := sha256File(upPath)
	if err != nil {
		return streamRun{}, fmt.Errorf("uploaded file: %w", err)
	}
	if sum != e.bigSum {
		return streamRun{}, fmt.Errorf("uploaded file differs: %d bytes (want %d), SHA-256 %s", n, e.bigSize, sum)
	}
	return r, nil
}

// curlWriteOut is curl's --write-out for a download: the bytes received
// and the seconds from the start to the first data byte.
const curlWriteOut = "%{size_download} %{time_starttransfer}"

// parseCurlWriteOut reads what curlWriteOut printed.
func parseCurlWriteOut(s string) (size int64, ttfb time.Duration, err error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("curl wrote %q, want the size and the time to the first byte", s)
	}
	if size, err = strconv.ParseInt(f[0], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("curl wrote %q: %w", s, err)
	}
	sec, err := strconv.ParseFloat(f[1], 64)
	if err != nil || sec < 0 {
		return 0, 0, fmt.Errorf("curl wrote %q: not a time to the first byte", s)
	}
	return size, time.Duration(sec * float64(time.Second)), nil
}
