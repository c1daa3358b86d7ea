package policy

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

const benchTracked = 100_000

// benchAdmission returns an Admission with benchTracked addresses tracked
// (each holding one session) and a Defender holding 10,000 bans of other
// addresses, so that no check takes a shortcut.
func benchAdmission(b *testing.B) (*Admission, *Defender) {
	b.Helper()
	d, err := NewDefender(BanConfig{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10_000 {
		if _, err := d.Ban(netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}), time.Hour, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	l := Limits{ConnRate: 1e6, ConnBurst: 1e6, MaxSessionsPerIP: 10, MaxSessions: 10 * benchTracked,
		Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}}
	a := NewAdmission(l, d)
	for i := range benchTracked {
		if _, err := a.Admit(nthIP(i)); err != nil {
			b.Fatal(err)
		}
	}
	if got := a.Stats().TrackedIPs; got != benchTracked {
		b.Fatalf("tracked %d", got)
	}
	return a, d
}

// BenchmarkAdmit is the cost of admitting a connection at accept with
// 100,000 addresses tracked: the allowlist, the ban check, the rate check,
// the per-IP and total caps, the ticket, and its Release at session end.
func BenchmarkAdmit(b *testing.B) {
	a, _ := benchAdmission(b)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			tk, err := a.Admit(nthIP(i % benchTracked))
			if err != nil {
				b.Fatal(err)
			}
			tk.Release()
			i += 7919 // a prime: spread over the table
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(1)) * 104729
			for pb.Next() {
				tk, err := a.Admit(nthIP(i % benchTracked))
				if err != nil {
					b.Error(err)
					return
				}
				tk.Release()
				i += 7919
			}
		})
	})
}

// BenchmarkAdmitBanned is the refusal of a banned address (a flood from
// banned sources).
func BenchmarkAdmitBanned(b *testing.B) {
	a, _ := benchAdmission(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := a.Admit(netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)})); err != ErrBanned {
			b.Fatal(err)
		}
		i = (i + 1) % 10_000
	}
}

// BenchmarkAdmitRateRefused is the refusal of an address over its
// connection rate (a flood from few sources).
func BenchmarkAdmitRateRefused(b *testing.B) {
	a := NewAdmission(Limits{ConnRate: 0.001, ConnBurst: 1}, nil)
	for i := range benchTracked {
		tk, _ := a.Admit(nthIP(i))
		tk.Release()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := a.Admit(nthIP(i % benchTracked)); err != ErrConnRate {
			b.Fatal(err)
		}
		i += 7919
	}
}

// BenchmarkAdmitNewAddress is the first connection of an unseen address
// (a flood from many sources): an entry and a rate bucket are created.
func BenchmarkAdmitNewAddress(b *testing.B) {
	l := Limits{ConnRate: 1, ConnBurst: 5}
	a := NewAdmission(l, nil)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%benchTracked == benchTracked-1 { // keep the table at 100,000 at most
			b.StopTimer()
			a = NewAdmission(l, nil)
			b.StartTimer()
		}
		tk, err := a.Admit(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb9, 12: byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}))
		if err != nil {
			b.Fatal(err)
		}
		tk.Release()
		i++
	}
}

// BenchmarkBanned is the Defender's hot path alone.
func BenchmarkBanned(b *testing.B) {
	_, d := benchAdmission(b)
	ip := netip.MustParseAddr("198.51.100.1")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := d.Banned(ip); ok {
			b.Fatal("banned")
		}
	}
}

// BenchmarkRecord is the cost of counting a failed login.
func BenchmarkRecord(b *testing.B) {
	d, err := NewDefender(BanConfig{MaxFailures: 1000}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Record(nthIP(i%benchTracked), KindLoginFailed)
		i += 7919
	}
}
