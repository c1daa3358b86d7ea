package demoftpd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// timeValFormat is RFC 3659's time-val, always in UTC.
const timeValFormat = "20060102150405"

var errNotDir = errors.New("not a directory")

// listFormat is how LIST, NLST or MLSD write their entries.
type listFormat struct {
	// dirOnly refuses a file argument (MLSD, RFC 3659 section 7.1).
	dirOnly bool
	// line writes one entry, without the line end.
	line func(b *bytes.Buffer, fi fs.FileInfo, now time.Time)
}

var (
	formatLs    = listFormat{line: lsLine}
	formatNames = listFormat{line: nameLine}
	formatMlsd  = listFormat{dirOnly: true, line: mlsdLine}
)

// listing formats the directory vpath, or the single file vpath unless the
// format is dirOnly, one CRLF-terminated line per entry.
func (s *Server) listing(vpath string, format listFormat, now time.Time) ([]byte, error) {
	real := s.realPath(vpath)
	fi, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	var infos []fs.FileInfo
	if fi.IsDir() {
		entries, err := os.ReadDir(real)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			infos = append(infos, info)
		}
	} else {
		if format.dirOnly {
			return nil, errNotDir
		}
		infos = []fs.FileInfo{fi}
	}
	var b bytes.Buffer
	for _, info := range infos {
		format.line(&b, info, now)
		b.WriteString("\r\n")
	}
	return b.Bytes(), nil
}

// lsLine writes an `ls -l` line, the LIST format clients parse.
func lsLine(b *bytes.Buffer, fi fs.FileInfo, now time.Time) {
	mt := fi.ModTime().UTC()
	date := mt.Format("Jan _2  2006")
	if age := now.Sub(mt); age < 180*24*time.Hour && age > -24*time.Hour {
		date = mt.Format("Jan _2 15:04")
	}
	fmt.Fprintf(b, "%s 1 ftp ftp %12d %s %s", lsMode(fi.Mode()), fi.Size(), date, fi.Name())
}

// nameLine writes the bare name, the NLST format.
func nameLine(b *bytes.Buffer, fi fs.FileInfo, _ time.Time) {
	b.WriteString(fi.Name())
}

// mlsdLine writes an RFC 3659 entry: facts, a space, the name.
func mlsdLine(b *bytes.Buffer, fi fs.FileInfo, _ time.Time) {
	b.WriteString(mlsxFacts(fi))
	b.WriteByte(' ')
	b.WriteString(fi.Name())
}

func mlsxFacts(fi fs.FileInfo) string {
	typ := "file"
	switch {
	case fi.IsDir():
		typ = "dir"
	case fi.Mode()&fs.ModeSymlink != 0:
		typ = "OS.unix=slink"
	}
	return fmt.Sprintf("type=%s;size=%d;modify=%s;", typ, fi.Size(), fi.ModTime().UTC().Format(timeValFormat))
}

// lsMode is the ten-character mode column of ls -l.
func lsMode(m fs.FileMode) string {
	b := []byte("----------")
	switch {
	case m.IsDir():
		b[0] = 'd'
	case m&fs.ModeSymlink != 0:
		b[0] = 'l'
	}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if m&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	return string(b)
}

// stripListFlags drops ls-style options ("-la") in front of a LIST, NLST or
// STAT path; many clients send them.
func stripListFlags(param string) string {
	fields := strings.Fields(param)
	for len(fields) > 0 && strings.HasPrefix(fields[0], "-") {
		param = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(param), fields[0]))
		fields = fields[1:]
	}
	return strings.TrimSpace(param)
}
