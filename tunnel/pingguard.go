package tunnel

import (
	"encoding/binary"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// yamux (v0.1.2) answers each ping request in a goroutine of its own, which
// waits up to the write timeout for room in the send queue: a peer that
// floods pings and does not read makes it start goroutines without bound
// until the keepalive gives up. pingGuard reads under the session, follows
// the frames and ends the tunnel when the peer sends more than
// maxPingsPerSecond ping requests in a second (a keepalive sends one per
// interval).
type pingGuard struct {
	io.ReadWriteCloser // the TLS connection; writes and Close pass through
	log                zerolog.Logger
	hdr                [headerSize]byte
	hn                 int    // header bytes gathered
	skip               uint32 // body bytes of the current data frame left
	window             time.Time
	pings              int
	lastRead           atomic.Int64 // when bytes last came from the peer (UnixNano)
}

const (
	typePing          = 2
	flagSYN           = 1
	maxPingsPerSecond = 100
)

var errPingFlood = errors.New("tunnel: ping flood: the peer sent more than 100 pings in a second")

func guardPings(c io.ReadWriteCloser, log zerolog.Logger) *pingGuard {
	return &pingGuard{ReadWriteCloser: c, log: log}
}

func (g *pingGuard) Read(b []byte) (int, error) {
	n, err := g.ReadWriteCloser.Read(b)
	if n > 0 {
		g.lastRead.Store(time.Now().UnixNano())
	}
	for p := b[:n]; len(p) > 0; {
		if g.skip > 0 {
			k := uint32(min(len(p), int(min(g.skip, 1<<30))))
			g.skip -= k
			p = p[k:]
			continue
		}
		k := copy(g.hdr[g.hn:], p)
		g.hn += k
		p = p[k:]
		if g.hn < headerSize {
			break
		}
		g.hn = 0
		switch g.hdr[1] {
		case typeData:
			g.skip = binary.BigEndian.Uint32(g.hdr[8:12])
		case typePing:
			if binary.BigEndian.Uint16(g.hdr[2:4])&flagSYN != 0 && !g.ping() {
				g.log.Warn().Int("max_pings_per_second", maxPingsPerSecond).Msg("tunnel dropped: ping flood from its other end")
				return 0, errPingFlood
			}
		}
	}
	return n, err
}

// ping counts a ping request; false when there were too many this second.
func (g *pingGuard) ping() bool {
	if now := time.Now(); now.Sub(g.window) >= time.Second {
		g.window, g.pings = now, 0
	}
	g.pings++
	return g.pings <= maxPingsPerSecond
}
