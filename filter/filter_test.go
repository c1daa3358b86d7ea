package filter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

type stub struct {
	v    Verdict
	err  error
	seen int
	done bool
}

func (s *stub) Write(p []byte) error { s.seen += len(p); return nil }
func (s *stub) Finish(context.Context) (Verdict, error) {
	s.done = true
	return s.v, s.err
}

// TestChainFinish: the first veto wins and later filters are not asked; a
// veto without a code is 550; an error is a 451 veto without its detail.
func TestChainFinish(t *testing.T) {
	ok, no, after := &stub{}, &stub{v: Verdict{Veto: true}}, &stub{}
	c := Chain{ok, no, after}
	if err := c.Write([]byte("abc")); err != nil || ok.seen != 3 || after.seen != 3 {
		t.Fatalf("Write: %v, seen %d %d", err, ok.seen, after.seen)
	}
	v, err := c.Finish(context.Background())
	if err != nil || !v.Veto || v.Code != 550 || after.done {
		t.Fatalf("Finish = %+v, %v; later filter asked: %v", v, err, after.done)
	}
	bad := &stub{err: errors.New("scanner down: /secret/path")}
	v, err = Chain{bad}.Finish(context.Background())
	if err == nil || !v.Veto || v.Code != 451 || v.Text != "Transfer check failed." {
		t.Fatalf("Finish = %+v, %v", v, err)
	}
	if v, err := (Chain{ok}).Finish(context.Background()); err != nil || v.Veto {
		t.Fatalf("Finish = %+v, %v", v, err)
	}
}

// TestSHA256: the sum and size of everything written, across writes.
func TestSHA256(t *testing.T) {
	h := NewSHA256()
	_ = h.Write([]byte("hello "))
	_ = h.Write([]byte("world"))
	want := sha256.Sum256([]byte("hello world"))
	if h.Sum() != hex.EncodeToString(want[:]) || h.Size() != 11 {
		t.Fatalf("Sum %s Size %d", h.Sum(), h.Size())
	}
}

type pacer struct{ asked int }

func (p *pacer) Wait(_ context.Context, n int) error { p.asked += n; return nil }

// TestThrottle: each Write waits for exactly its length.
func TestThrottle(t *testing.T) {
	p := &pacer{}
	th := NewThrottle(context.Background(), p)
	_ = th.Write(make([]byte, 1000))
	_ = th.Write(make([]byte, 24))
	if p.asked != 1024 {
		t.Fatalf("asked for %d bytes, want 1024", p.asked)
	}
}
