package testdlp

import (
	"bytes"
	"compress/gzip"
)

// Card is a Visa test number, grouped.
const Card = "4111 1111 1111 1111"

// File is size bytes of text holding n card numbers, each across a 4 KiB
// boundary (and so across the relay's and TLS's chunk boundaries, which
// fall on such boundaries).
func File(n, size int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		for b.Len()%4096 != 4088 {
			b.WriteByte('a' + byte(b.Len()%26))
			if b.Len()%61 == 0 {
				b.WriteByte('\n')
			}
		}
		b.WriteString(" " + Card + " ")
	}
	for b.Len() < size {
		b.WriteString("nothing to see here\n")
	}
	return b.Bytes()[:size]
}

// Gzip compresses data.
func Gzip(data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write(data)
	_ = w.Close() // writing to memory does not fail
	return b.Bytes()
}
