package ftp_test

import (
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// loopReader returns the same bytes over and over: a control connection
// that never runs dry, so that a benchmark measures the parser and not the
// refilling of its input.
type loopReader struct {
	data []byte
	off  int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

// A session's worth of typical client commands.
var benchCommands = strings.Join([]string{
	"USER alice", "PASS s3cret", "PBSZ 0", "PROT P", "TYPE I", "EPSV",
	"RETR /outgoing/2024/report-final.csv", "SIZE big.bin", "NOOP", "CWD /incoming",
	"STOR upload.bin", "MLSD", "QUIT",
}, "\r\n") + "\r\n"

func BenchmarkReadCommand(b *testing.B) {
	r := ftp.NewReader(&loopReader{data: []byte(benchCommands)})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ReadCommand(); err != nil {
			b.Fatal(err)
		}
	}
}

// ABOR as clients send it: Telnet IP and Synch before the verb.
func BenchmarkReadCommandTelnet(b *testing.B) {
	r := ftp.NewReader(&loopReader{data: []byte("\xff\xf4\xff\xf2ABOR\r\n")})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ReadCommand(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadReplySingleLine(b *testing.B) {
	r := ftp.NewReader(&loopReader{data: []byte("229 Entering Extended Passive Mode (|||50012|)\r\n")})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ReadReply(); err != nil {
			b.Fatal(err)
		}
	}
}

// A FEAT reply as vsftpd sends it: the multi-line reply every session reads.
const benchFeat = "211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n" +
	" AUTH TLS\r\n PBSZ\r\n PROT\r\n MLST type*;size*;modify*;\r\n211 End\r\n"

func BenchmarkReadReplyMultiLine(b *testing.B) {
	r := ftp.NewReader(&loopReader{data: []byte(benchFeat)})
	b.ReportAllocs()
	b.SetBytes(int64(len(benchFeat)))
	for b.Loop() {
		if _, err := r.ReadReply(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePASV(b *testing.B) {
	const text = "Entering Passive Mode (192,168,10,21,195,80)."
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ftp.ParsePASV(text); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFormatPASV(b *testing.B) {
	ap := netip.MustParseAddrPort("203.0.113.10:50012")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ftp.FormatPASV(ap); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseEPSV(b *testing.B) {
	const text = "Entering Extended Passive Mode (|||50012|)"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ftp.ParseEPSV(text); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteReplySingleLine(b *testing.B) {
	rep := ftp.NewReply(ftp.StatusExtendedPassiveMode, ftp.FormatEPSV(50012))
	b.ReportAllocs()
	for b.Loop() {
		if err := ftp.WriteReply(io.Discard, rep); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteReplyMultiLine(b *testing.B) {
	r := ftp.NewReader(strings.NewReader(benchFeat))
	rep, err := r.ReadReply()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchFeat)))
	for b.Loop() {
		if err := ftp.WriteReply(io.Discard, rep); err != nil {
			b.Fatal(err)
		}
	}
}
