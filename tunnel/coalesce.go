package tunnel

import (
	"encoding/binary"
	"io"
)

// yamux's session writes each data frame as two Writes, its 12-byte header
// and then its body: over TLS that is two records and two system calls
// per frame. frameWriter holds the header of a data frame that announces a
// body and writes it with the body, in one Write. Every other header
// (window updates, pings, go-away, data frames without a body: FIN, SYN)
// is written at once, so nothing waits for a Write that will not come.
// yamux's send loop is the only writer; frameWriter is not for concurrent
// use.
type frameWriter struct {
	io.ReadWriteCloser
	buf     []byte
	pending bool
}

const (
	headerSize = 12 // yamux: version, type, flags (2), stream (4), length (4)
	typeData   = 0
)

func (w *frameWriter) Write(b []byte) (int, error) {
	if w.pending {
		w.buf = append(w.buf[:headerSize], b...)
		w.pending = false
		if _, err := w.ReadWriteCloser.Write(w.buf); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	if len(b) == headerSize && b[1] == typeData && binary.BigEndian.Uint32(b[8:12]) > 0 {
		w.buf = append(w.buf[:0], b...)
		w.pending = true
		return len(b), nil
	}
	return w.ReadWriteCloser.Write(b)
}
