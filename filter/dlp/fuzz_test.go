package dlp

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

func runtimeGC() {
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
}

// FuzzDetectors: never a panic, the counts do not depend on the chunking,
// and the token detectors find what the reference scanner finds.
func FuzzDetectors(f *testing.F) {
	for _, s := range []string{"4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00", "123-45-6789 a@b.cc", "secret PRJ-1"} {
		f.Add([]byte(s), uint8(3))
	}
	// Longer than two blocks: the block pass (blocks.go) and its hand-over.
	f.Add(benchCSV(700), uint8(5))
	f.Add(csvLike(rand.New(rand.NewPCG(1, 1)), 900), uint8(11))
	p := fullPolicy(f)
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		whole := countChunks(p, data, func() int { return len(data) })
		k := int(step)%17 + 1
		got := countChunks(p, data, func() int { return k })
		if fmt.Sprint(got) != fmt.Sprint(whole) {
			t.Fatalf("chunks of %d: %+v, whole %+v", k, got, whole)
		}
		if ref := refCount(p, data); !sameTokens(whole, ref) {
			t.Fatalf("%+v, the reference finds %+v", whole, ref)
		}
	})
}
