package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestXferlogLine(t *testing.T) {
	at := time.Date(2026, 11, 3, 4, 5, 6, 0, time.UTC)
	tr := func(verb string, complete bool, path string, d float64) *Transfer {
		return &Transfer{Verb: verb, Path: path, Bytes: 1048576, DurationS: d, Complete: complete}
	}
	for _, c := range []struct {
		name string
		r    Record
		want string // "" = no line
	}{
		{"upload", Record{Kind: KindTransfer, Time: at, Client: "192.0.2.7:50000", User: "alice", Transfer: tr("STOR", true, "/in/a.zip", 2.1)},
			"Tue Nov  3 04:05:06 2026 3 192.0.2.7 1048576 /in/a.zip b _ i r alice ftp 0 * c"},
		{"download incomplete", Record{Kind: KindTransfer, Time: at, Client: "[2001:db8::1]:50000", User: "bob", Transfer: tr("RETR", false, "/out/b.csv", 0)},
			"Tue Nov  3 04:05:06 2026 1 2001:db8::1 1048576 /out/b.csv b _ o r bob ftp 0 * i"},
		{"append anonymous", Record{Kind: KindTransfer, Time: at, Client: "192.0.2.7:1", User: "anonymous", Transfer: tr("APPE", true, "/x", 10)},
			"Tue Nov  3 04:05:06 2026 10 192.0.2.7 1048576 /x b _ i a anonymous ftp 0 * c"},
		{"spaces and newline in names", Record{Kind: KindTransfer, Time: at, Client: "192.0.2.7:1", User: "a b", Transfer: tr("STOU", true, "/in/my file\nfake line.txt", 1)},
			"Tue Nov  3 04:05:06 2026 1 192.0.2.7 1048576 /in/my_file_fake_line.txt b _ i r a_b ftp 0 * c"},
		{"empty user and path", Record{Kind: KindTransfer, Time: at, Transfer: tr("RETR", true, "", 1)},
			"Tue Nov  3 04:05:06 2026 1 - 1048576 - b _ o r - ftp 0 * c"},
		{"listing", Record{Kind: KindTransfer, Time: at, Transfer: tr("MLSD", true, "/", 1)}, ""},
		{"login", Record{Kind: KindLogin, Time: at, Login: &Login{Result: "ok"}}, ""},
	} {
		got, ok := XferlogLine(&c.r, time.UTC)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("%s:\n got %q (%v)\nwant %q", c.name, got, ok, c.want)
		}
		if ok && len(strings.Fields(got)) != 18 { // the date is 5 fields
			t.Errorf("%s: %d fields", c.name, len(strings.Fields(got)))
		}
	}
}

func TestXferlogFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "xferlog")
	x, err := NewXferlog(XferlogConfig{Path: p, UTC: true})
	if err != nil {
		t.Fatal(err)
	}
	recs := mixedRecords(8) // transfers at 0, 3, 4, 7
	if err := x.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	if err := x.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := x.Write(context.Background(), recs[:1]); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(p + ".1")
	cur, _ := os.ReadFile(p)
	if n := strings.Count(string(old), "\n"); n != 4 {
		t.Fatalf("%d lines before the rotation:\n%s", n, old)
	}
	if !strings.HasSuffix(string(old), " i r alice ftp 0 * i\n") || strings.Count(string(cur), "\n") != 1 {
		t.Fatalf("files:\n%s---\n%s", old, cur)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if err := (&XferlogConfig{Path: p, Mode: 0o666}).Validate(); err == nil {
		t.Fatal("world-writable mode accepted")
	}
}
