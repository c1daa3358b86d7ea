package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
)

// profileGateway writes profiles of the gateway into outDir (--only picks
// some): for "stream", the gateway runs in this process (proxy.Server, FTPS
// in front, vsftpd plain behind) and a CPU profile covers one curl download
// and one curl upload of the big file (DIR/download.pprof, DIR/upload.pprof;
// the bench only waits for curl meanwhile, so the profile is the
// gateway's); for "sessions" and "idle", the gateway binary is profiled
// through its admin API (profileSessions, profileIdle). Each profile's
// `go tool pprof -top` is written beside it.
func profileGateway(ctx context.Context, e *env, outDir string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	if err := checkBindable(passiveBlocks[0]); err != nil {
		return err
	}
	if err := checkBindable(passiveBlocks[2]); err != nil {
		return err
	}
	be, err := startVsftpd(ctx, e, false, passiveBlocks[0])
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(e.dir, "gateway-inprocess.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cfg := proxy.Config{
		Listeners: []proxy.Listener{{Name: "explicit", Address: loopback(port), TLS: proxy.TLSExplicit}},
		TLS: policy.TLSConfig{
			CertFile: e.pki.ChainFile, KeyFile: e.pki.KeyFile,
			MinVersion: tls.VersionTLS12, RequireProtectedData: true,
			DataSessionReuse: policy.ReuseUser, // the binary's default
		},
		Backend: proxy.Backend{Address: be.Addr, TLS: proxy.TLSNone},
		Passive: nat.Config{
			PublicHost: netip.MustParseAddr("127.0.0.1"),
			Ports:      nat.PortRange{Low: uint16(passiveBlocks[2].lo), High: uint16(passiveBlocks[2].hi)},
		},
	}
	// The binary's logger: JSON at info level.
	log := zerolog.New(logFile).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	srv, err := proxy.New(cfg, log)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	t := &target{key: tGwPlain, addr: loopback(port), cpu: selfCPU}
	for _, dir := range []string{"download", "upload"} {
		if !profilePhase("stream") {
			break
		}
		path := filepath.Join(outDir, dir+".pprof")
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		wall, cpu, cpuErr, err := oneStream(ctx, e, t, "curl", dir, pprof.StopCPUProfile)
		pprof.StopCPUProfile() // no-op unless oneStream failed before stopping it
		f.Close()
		if err != nil {
			return fmt.Errorf("curl %s: %w", dir, err)
		}
		if cpuErr != nil {
			return cpuErr
		}
		gib := float64(e.bigSize) / (1 << 30)
		fmt.Printf("in-process gateway, FTPS->plain, curl %s of %s: %.0f MB/s, gateway CPU %.2f s/GiB (%.2f GB per CPU-second)\n",
			dir, human(e.bigSize), mbps(e.bigSize, wall), cpu.Seconds()/gib, float64(e.bigSize)/1e9/cpu.Seconds())
		top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=35", path).CombinedOutput()
		if err != nil {
			return fmt.Errorf("go tool pprof -top %s: %v: %s", path, err, top)
		}
		topPath := filepath.Join(outDir, dir+".top.txt")
		if err := os.WriteFile(topPath, top, 0o644); err != nil {
			return err
		}
		fmt.Printf("profile: %s (top: %s)\n%s\n", path, topPath, top)
	}
	if !profilePhase("sessions") && !profilePhase("idle") {
		return nil
	}
	// Sessions and idle memory: the gateway binary, as the table measures
	// it, profiled through its admin API (admin.pprof), so that the
	// bench's own client is not in the profiles.
	g, err := startGateway(ctx, e, "ftpsgate-profile", be.Addr, "none", passiveBlocks[3])
	if err != nil {
		return err
	}
	defer g.proc.stop()
	gt := &target{key: tGwPlain, addr: g.Addr, cpu: processCPU(g.proc.pid())}
	if profilePhase("sessions") {
		if err := profileSessions(ctx, e, g, gt, outDir); err != nil {
			return fmt.Errorf("sessions: %w", err)
		}
	}
	if profilePhase("idle") {
		if err := profileIdle(ctx, e, g, gt, outDir); err != nil {
			return fmt.Errorf("idle: %w", err)
		}
	}
	return nil
}

// profilePhase reports whether --only (if given) asks for this profile.
func profilePhase(key string) bool {
	return onlyPhases == "" || slices.Contains(strings.Split(onlyPhases, ","), key)
}

// fetchProfile GETs /debug/pprof/NAME from the gateway's admin API into
// path.
func fetchProfile(ctx context.Context, g *gateway, name, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.Admin+"/debug/pprof/"+name, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+g.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("GET /debug/pprof/%s: %s: %s", name, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// profileSessions CPU-profiles the gateway process during the sessions
// workload, one at a time, for the plan's time.
func profileSessions(ctx context.Context, e *env, g *gateway, t *target, outDir string) error {
	path := filepath.Join(outDir, "sessions.pprof")
	e.sessionsFor = 10 * time.Second // more samples than one round of the table
	secs := int(e.sessionsFor.Seconds() + 0.5)
	profErr := make(chan error, 1)
	go func() {
		profErr <- fetchProfile(ctx, g, fmt.Sprintf("profile?seconds=%d", secs+1), path)
	}()
	lat, failed, wall, cpu, cpuErr := runSessions(ctx, e, t, 1)
	if err := <-profErr; err != nil {
		return err
	}
	if len(lat) == 0 {
		return fmt.Errorf("no session completed (%d failed: %v)", failed, lastSessionErr.Load())
	}
	if cpuErr != nil {
		return cpuErr
	}
	fmt.Printf("gateway binary, FTPS->plain, sessions one at a time: %d in %s (%.1f/s), p50 %.1f ms, gateway CPU %.2f ms/session, %d failed\n",
		len(lat), wall.Round(time.Millisecond), float64(len(lat))/wall.Seconds(), ms(percentile(lat, 50)), ms(cpu)/float64(len(lat)), failed)
	return writeTop(ctx, path, filepath.Join(outDir, "sessions.top.txt"))
}

// profileIdle opens the plan's first count of idle logged-in sessions
// through the gateway binary, and fetches its heap profile (in-use space,
// after a GC) and its goroutines.
func profileIdle(ctx context.Context, e *env, g *gateway, t *target, outDir string) error {
	n := e.idleCounts[0]
	per, note, err := idleMemory(ctx, e, t.addr, rssOf(g.proc.pid()), n, func() error {
		if err := fetchProfile(ctx, g, "heap?gc=1", filepath.Join(outDir, "idle-heap.pprof")); err != nil {
			return err
		}
		return fetchProfile(ctx, g, "goroutine?debug=1", filepath.Join(outDir, "idle-goroutines.txt"))
	})
	if err != nil {
		return err
	}
	fmt.Printf("gateway binary, %d idle sessions: %.1f KiB RSS per session %s\ngoroutines: %s\n", n, per/1024, note, filepath.Join(outDir, "idle-goroutines.txt"))
	return writeTop(ctx, filepath.Join(outDir, "idle-heap.pprof"), filepath.Join(outDir, "idle-heap.top.txt"), "-sample_index=inuse_space")
}

// writeTop writes `go tool pprof -top` of a profile beside it and prints it.
func writeTop(ctx context.Context, path, topPath string, args ...string) error {
	argv := append([]string{"tool", "pprof", "-top", "-nodecount=40"}, args...)
	top, err := exec.CommandContext(ctx, "go", append(argv, path)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go tool pprof -top %s: %v: %s", path, err, top)
	}
	if err := os.WriteFile(topPath, top, 0o644); err != nil {
		return err
	}
	fmt.Printf("profile: %s (top: %s)\n%s\n", path, topPath, top)
	return nil
}

// selfCPU is this process's user+system time: the in-process gateway's,
// since the bench only waits for curl (a child, not counted) meanwhile.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
