package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testicap"
)

// The ICAP scanner of the inspection part: Debian's c-icap with its
// virus_scan service in simple mode (the verdict after the whole body)
// over ClamAV's clamd, configured by internal/testicap as for the tests
// (testicap.ClamdConf and CICAPConf), but started by the bench (its own process groups, Pdeathsig, stopped at
// exit) and with the size limits raised to cover the big file, so that
// every byte is scanned (testicap.Config.MaxSize): c-icap's virus_scan.MaxObjectSize, clamd's
// MaxFileSize, MaxScanSize and StreamMaxLength. clamd's cache of clean
// files is off (Config.DisableCache): the bench moves the same file again and
// again, and with the cache every scan after the first found its hash
// there and skipped the scan (one full run: 11.3 s/GiB of scanner CPU for
// the first 1 GiB download, 3.7-4.7 for the next transfers), which a
// gateway's new files never do. ClamAV's database is one
// hash signature made offline by sigtool for a file of random bytes
// (nothing downloaded), which no transfer of the bench matches: every scan
// is clean.

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

// startScanner writes the configurations in DIR/icap (internal/testicap's,
// with the bench's Config), starts clamd and waits for its PING, then
// c-icap and waits until the service answers OPTIONS.
func startScanner(ctx context.Context, e *env, maxSize int64) (*scanner, error) {
	if why := testicap.Missing(); why != "" {
		return nil, errors.New(why)
	}
	dir := filepath.Join(e.dir, "icap")
	f := testicap.Files{Run: dir, Logs: dir, DB: filepath.Join(dir, "db"), Tmp: filepath.Join(dir, "tmp"), ClamdSock: filepath.Join(dir, "clamd.sock")}
	for _, d := range []string{dir, f.DB, f.Tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	sample := [][]byte{[]byte(rand.Text() + rand.Text())}
	if _, err := testicap.WriteSignatures(ctx, dir, filepath.Join(f.DB, "bench.hsb"), "Ftpsgate.Bench.Sig", sample); err != nil {
		return nil, err
	}
	c := testicap.Config{MaxSize: maxSize, DisableCache: true, Timeout: time.Minute, Root: true}
	clamdConf := filepath.Join(dir, "clamd.conf")
	if err := os.WriteFile(clamdConf, []byte(testicap.ClamdConf(f, c)), 0o600); err != nil {
		return nil, err
	}
	s := &scanner{}
	var err error
	if s.clamd, err = startProcess("clamd", filepath.Join(dir, "clamd.out"), nil, testicap.ClamdPath, "-c", clamdConf); err != nil {
		return nil, err
	}
	if err := waitReady(ctx, s.clamd, func() error { return testicap.PingClamd(f.ClamdSock) }); err != nil {
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
	if err := os.WriteFile(conf, []byte(testicap.CICAPConf(f, addr, c)), 0o600); err != nil {
		s.stop()
		return nil, err
	}
	if s.cicap, err = startProcess("c-icap", filepath.Join(dir, "c-icap.out"), nil, testicap.CICAPPath, "-N", "-f", conf); err != nil {
		s.stop()
		return nil, err
	}
	if err := waitReady(ctx, s.cicap, func() error { return testicap.Options(addr) }); err != nil {
		s.stop()
		return nil, fmt.Errorf("c-icap did not start: %w", err)
	}
	s.url = "icap://" + addr + "/" + testicap.Service
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
