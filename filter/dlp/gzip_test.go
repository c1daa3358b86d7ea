package dlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ftpsgate/ftpsgate/filter"
)

func gz(t testing.TB, data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func upload(t testing.TB, p *Policy, data []byte, chunk func() int) (filter.Verdict, Counts) {
	t.Helper()
	f := p.Filter(filter.Meta{Direction: filter.Upload})
	for len(data) > 0 {
		n := min(max(chunk(), 1), len(data))
		if err := f.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	v, err := f.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v, f.(*Filter).Counts()
}

func TestGzipSameCounts(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	p := fullPolicy(t)
	data := corpus(r, 50000)
	_, plain := upload(t, p, data, func() int { return 4096 })
	z := gz(t, data)
	for _, chunk := range []func() int{func() int { return len(z) }, func() int { return 1 }, func() int { return r.IntN(300) }} {
		v, got := upload(t, p, z, chunk)
		if v.Veto || fmt.Sprint(got) != fmt.Sprint(plain) {
			t.Fatalf("gzip: %+v %+v, plain %+v", v, got, plain)
		}
	}
	if plain.Cards == 0 {
		t.Fatal("no cards")
	}
}

func TestGzipBlocks(t *testing.T) {
	cfg := Defaults()
	cfg.Enabled = true
	cfg.Cards = Rule{Enabled: true, Threshold: 10, Action: Block}
	var got []Finding
	p, _ := New(cfg, func(f Finding) { got = append(got, f) })
	v, _ := upload(t, p, gz(t, cardFile(11, 64<<10)), func() int { return 1000 })
	if !v.Veto || v.Code != 550 || len(got) != 1 || got[0].Count != 11 {
		t.Fatalf("%+v %+v", v, got)
	}
	got = nil
	if v, _ := upload(t, p, gz(t, cardFile(0, 64<<10)), func() int { return 1000 }); v.Veto {
		t.Fatalf("clean file vetoed: %+v %+v", v, got)
	}
}

func TestGzipBombBounded(t *testing.T) {
	cfg := Defaults()
	cfg.Enabled = true
	cfg.GzipMaxBytes = 1 << 20
	var got []Finding
	p, _ := New(cfg, func(f Finding) { got = append(got, f) })
	bomb := gz(t, make([]byte, 64<<20)) // 64 MiB of zeros in ~64 KiB
	v, c := upload(t, p, bomb, func() int { return 32 << 10 })
	if !v.Veto || len(got) != 1 || got[0].Detector != "gzip" {
		t.Fatalf("bomb: %+v %+v", v, got)
	}
	_ = c
	// Not gzip after all: the gzip finding too.
	got = nil
	if v, _ := upload(t, p, []byte("\x1f\x8bnot really gzip"), func() int { return 3 }); !v.Veto || got[0].Detector != "gzip" {
		t.Fatalf("corrupt: %+v %+v", v, got)
	}
	// Off: inspected as it is.
	cfg.Gzip = false
	p, _ = New(cfg, nil)
	if v, _ := upload(t, p, bomb, func() int { return 32 << 10 }); v.Veto {
		t.Fatalf("gzip off: %+v", v)
	}
}

// A filter dropped before Finish (a cut transfer) ends its decompressor.
func TestGzipAbandoned(t *testing.T) {
	p := testPolicy(t, nil)
	f := p.Filter(filter.Meta{Direction: filter.Upload}).(*Filter)
	_ = f.Write(gz(t, []byte("hello"))[:5])
	done := f.z.done
	f = nil
	for i := 0; i < 100; i++ {
		runtimeGC()
		select {
		case <-done:
			return
		default:
		}
	}
	t.Fatal("decompressor still running")
}

// A .tar.gz is gzip outside and tar inside: denying either finds it.
func TestGzipFileTypes(t *testing.T) {
	tar := make([]byte, 1024)
	copy(tar[257:], "ustar\x0000")
	z := gz(t, tar)
	for _, deny := range []string{"tar", "gzip", "archive"} {
		cfg := Defaults()
		cfg.Enabled, cfg.DenyTypes = true, []string{deny}
		var got []Finding
		p, _ := New(cfg, func(f Finding) { got = append(got, f) })
		v, _ := upload(t, p, z, func() int { return 7 })
		if !v.Veto || len(got) == 0 {
			t.Fatalf("deny %s: %+v %+v", deny, v, got)
		}
	}
	cfg := Defaults()
	cfg.Enabled, cfg.DenyTypes = true, []string{"zip"}
	p, _ := New(cfg, nil)
	if v, _ := upload(t, p, z, func() int { return 7 }); v.Veto {
		t.Fatalf("deny zip: %+v", v)
	}
}
