package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/audit"
)

// writeTrail writes, through the file sink, one LIST session per list and
// one session per transfer verb in xfers (its SHA-256 and size given).
func writeTrail(t *testing.T, path string, lists int, xfers []audit.Transfer) {
	t.Helper()
	f, err := audit.OpenFile(audit.FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	session := func(tr audit.Transfer) {
		n++
		base := audit.Record{V: audit.SchemaVersion, Time: time.Now().UTC(), Session: fmt.Sprintf("s%d", n), User: "u"}
		var recs []audit.Record
		for i, set := range []func(*audit.Record){
			func(r *audit.Record) { r.Kind, r.SessionStart = audit.KindSessionStart, &audit.SessionStart{} },
			func(r *audit.Record) { r.Kind, r.Login = audit.KindLogin, &audit.Login{Result: "ok", Code: 230} },
			func(r *audit.Record) { r.Kind, r.Transfer = audit.KindTransfer, &tr },
			func(r *audit.Record) { r.Kind, r.SessionEnd = audit.KindSessionEnd, &audit.SessionEnd{Reason: "QUIT"} },
		} {
			r := base
			r.ID = fmt.Sprintf("t-%d-%d", n, i)
			set(&r)
			recs = append(recs, r)
		}
		if err := f.Write(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	for range lists {
		session(audit.Transfer{Verb: "LIST", Direction: "download", Complete: true, Code: 226})
	}
	for _, x := range xfers {
		session(x)
	}
}

func TestCheckAuditFile(t *testing.T) {
	e := &env{plan: plan{bigSize: 1000}, bigSum: strings.Repeat("ab", 32)}
	good := []audit.Transfer{
		{Verb: "RETR", Direction: "download", Complete: true, Code: 226, Bytes: 1000},
		{Verb: "STOR", Direction: "upload", Complete: true, Code: 226, Bytes: 1000, SHA256: e.bigSum, Size: 1000},
	}
	curl := map[string]tally{aFile + "/download": {tried: 1, ok: 1}, aFile + "/upload": {tried: 1, ok: 1}}
	for _, c := range []struct {
		name   string
		lists  int
		xfers  []audit.Transfer
		sess   tally
		curl   map[string]tally
		edit   func(string) string // of the file's text
		errHas string              // "": passes
	}{
		{name: "every transfer recorded", lists: 3, xfers: good, sess: tally{tried: 3, ok: 3}, curl: curl},
		{name: "a failed session may leave a record or not", lists: 3, xfers: good, sess: tally{tried: 4, ok: 3}, curl: curl},
		{name: "no records at all", sess: tally{tried: 3, ok: 3}, curl: curl, errHas: "LIST transfer records"},
		{name: "a session missing", lists: 2, xfers: good, sess: tally{tried: 3, ok: 3}, curl: curl, errHas: "2 LIST transfer records (2 complete) for 3 done"},
		{name: "more records than sessions", lists: 4, xfers: good, sess: tally{tried: 3, ok: 3}, curl: curl, errHas: "4 LIST"},
		{name: "an upload missing", lists: 1, xfers: good[:1], sess: tally{tried: 1, ok: 1}, curl: curl, errHas: "0 STOR"},
		{name: "an upload with another hash", lists: 1, xfers: []audit.Transfer{good[0], {Verb: "STOR", Complete: true, SHA256: strings.Repeat("cd", 32), Size: 1000}},
			sess: tally{tried: 1, ok: 1}, curl: curl, errHas: "not the file's"},
		{name: "an edited record", lists: 2, xfers: good, sess: tally{tried: 2, ok: 2}, curl: curl,
			edit: func(s string) string { return strings.Replace(s, `"verb":"RETR"`, `"verb":"RETR" `, 1) }, errHas: "audit.Verify"},
		{name: "a removed session", lists: 2, xfers: good, sess: tally{tried: 2, ok: 2}, curl: curl,
			edit: func(s string) string {
				l := strings.SplitAfter(s, "\n")
				return strings.Join(append(l[:4], l[8:]...), "")
			}, errHas: "audit.Verify"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			writeTrail(t, path, c.lists, c.xfers)
			if c.edit != nil {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(c.edit(string(b))), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			summary, per, err := checkAuditFile(e, path, c.sess, c.curl)
			switch {
			case c.errHas == "" && err != nil:
				t.Fatalf("check failed: %v", err)
			case c.errHas == "":
				if per != 4 || !strings.Contains(summary, "`audit.Verify` passed") {
					t.Errorf("summary %q, %v records per session", summary, per)
				}
			case err == nil:
				t.Fatalf("check passed (%s), want an error with %q", summary, c.errHas)
			case !strings.Contains(err.Error(), c.errHas):
				t.Errorf("error %q, want %q in it", err, c.errHas)
			}
		})
	}
}
