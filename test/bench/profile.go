package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
)

// profileGateway runs the gateway in this process (proxy.Server, FTPS in
// front, vsftpd plain behind), and writes a CPU profile of it during one
// curl download and one curl upload of the big file: DIR/download.pprof,
// DIR/upload.pprof, and `go tool pprof -top` of each beside them. The bench
// itself only waits for curl meanwhile, so the profile is the gateway's.
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
		Listeners: []proxy.Listener{{Name: "explicit", Address: loopback(port), TLS: proxy.TLSExplicit, RequireTLS: true}},
		TLS: policy.TLSConfig{
			CertFile: e.pki.CertFile, KeyFile: e.pki.KeyFile,
			MinVersion: tls.VersionTLS12, RequireProtectedData: true,
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
