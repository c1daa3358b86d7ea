package filter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// SHA256 is the hashing filter: the SHA-256 and size of the bytes that
// passed. It never vetoes.
type SHA256 struct {
	h hash.Hash
	n int64
}

// NewSHA256 returns a hashing filter.
func NewSHA256() *SHA256 { return &SHA256{h: sha256.New()} }

// Write hashes p.
func (f *SHA256) Write(p []byte) error {
	f.h.Write(p)
	f.n += int64(len(p))
	return nil
}

// Finish accepts.
func (f *SHA256) Finish(context.Context) (Verdict, error) { return Verdict{}, nil }

// Sum is the hex SHA-256 of what passed so far.
func (f *SHA256) Sum() string { return hex.EncodeToString(f.h.Sum(nil)) }

// Size is the number of bytes hashed.
func (f *SHA256) Size() int64 { return f.n }
