package tunnel

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// BenchmarkStream moves bytes through an agent on loopback to a sink.
func BenchmarkStream(b *testing.B) {
	p := newPKI(b)
	leaf := p.client(b, "a")
	h, gw := startHub(b, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf)}}, zerolog.Nop())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	startAgent(b, agentConfig(p, leaf, gw, "lan", "a", ln.Addr().String()))
	waitAgents(b, h, "lan", 1)
	c, err := h.Dialer("lan").DialBackend(dialCtx(b), ln.Addr().String(), netipAddr(""))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	cpu := cpuTime()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu, len(buf))
}

// BenchmarkStreamDownload moves bytes from a source through an agent.
func BenchmarkStreamDownload(b *testing.B) {
	p := newPKI(b)
	leaf := p.client(b, "a")
	h, gw := startHub(b, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf)}}, zerolog.Nop())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 256<<10)
				for {
					if _, err := c.Write(buf); err != nil {
						break
					}
				}
				c.Close()
			}()
		}
	}()
	startAgent(b, agentConfig(p, leaf, gw, "lan", "a", ln.Addr().String()))
	waitAgents(b, h, "lan", 1)
	c, err := h.Dialer("lan").DialBackend(dialCtx(b), ln.Addr().String(), netipAddr(""))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	cpu := cpuTime()
	for range b.N {
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu, len(buf))
}

// cpuTime is the process's user and system CPU time: both ends of the
// tunnel, the source and the sink.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU seconds per GiB moved since start (the
// steadier figure on a shared machine).
func reportCPU(b *testing.B, start time.Duration, size int) {
	gib := float64(b.N) * float64(size) / (1 << 30)
	b.ReportMetric((cpuTime()-start).Seconds()/gib, "cpu-s/GiB")
}
