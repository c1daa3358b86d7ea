package tunnel

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// BenchmarkStream moves bytes through an agent on loopback to a sink.
func BenchmarkStream(b *testing.B) {
	dst := serveTCP(b, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	h, _ := lan(b, dst, nil)
	c, err := h.Dialer("lan").DialBackend(dialCtx(b), dst, netipAddr(""))
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

// BenchmarkStreamDownload moves bytes from a source through an agent: the
// source writes 256 KiB at a time, or 16 KiB (a TLS server's records).
func BenchmarkStreamDownload(b *testing.B) {
	b.Run("256KiB", func(b *testing.B) { benchDownload(b, 256<<10) })
	b.Run("16KiB", func(b *testing.B) { benchDownload(b, 16<<10) })
}

func benchDownload(b *testing.B, chunk int) {
	dst := serveTCP(b, func(c net.Conn) {
		buf := make([]byte, chunk)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	h, _ := lan(b, dst, nil)
	c, err := h.Dialer("lan").DialBackend(dialCtx(b), dst, netipAddr(""))
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

// BenchmarkOpen opens a stream through an agent to a listener that
// answers one byte, reads it and closes: a session's control or data
// connection, without the transfer.
func BenchmarkOpen(b *testing.B) {
	dst := serveTCP(b, func(c net.Conn) { _, _ = c.Write([]byte("2")); _, _ = io.Copy(io.Discard, c) })
	h, _ := lan(b, dst, nil)
	d := h.Dialer("lan")
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for range b.N {
		c, err := d.DialBackend(dialCtx(b), dst, netipAddr(""))
		if err != nil {
			b.Fatal(err)
		}
		var one [1]byte
		if _, err := io.ReadFull(c, one[:]); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
}
