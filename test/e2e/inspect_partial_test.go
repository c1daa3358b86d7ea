package e2e

import (
	"bytes"
	"errors"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/filter/dlp"
	"github.com/ftpsgate/ftpsgate/internal/testdlp"
)

// TestDLPPartialTransfers: with a blocking rule, an upload in parts (APPE,
// or STOR after REST) is refused before its first byte and the file stays
// as it was, so that 6 + 5 card numbers sent in two parts cannot pass a
// "more than 10" rule; with partial_transfers: scan (ScanPartial) each part
// passes on its own.
func TestDLPPartialTransfers(t *testing.T) {
	for _, scan := range []bool{false, true} {
		cfg := dlp.Defaults()
		cfg.Enabled = true
		cfg.Cards = dlp.Rule{Enabled: true, Threshold: 10, Action: dlp.Block}
		cfg.ScanPartial = scan
		g, path, _ := startInspected(t, cfg)
		c := dial(t, g, "explicit")

		first, second := testdlp.File(6, 64<<10), testdlp.File(5, 64<<10)
		if err := c.Stor("parts.txt", bytes.NewReader(first)); err != nil {
			t.Fatalf("STOR the first part: %v", err)
		}
		errAppe := c.Append("parts.txt", bytes.NewReader(second))
		errRest := c.StorFrom("parts.txt", bytes.NewReader(second), uint64(len(first)))
		got := readFile(t, filepath.Join(g.root, "parts.txt"))
		if scan {
			if errAppe != nil || errRest != nil {
				t.Fatalf("scan: APPE %v, REST+STOR %v", errAppe, errRest)
			}
			if !bytes.Equal(got, append(append([]byte{}, first...), second...)) {
				t.Fatalf("scan: the file on the backend is %d bytes", len(got))
			}
			continue
		}
		for verb, err := range map[string]error{"APPE": errAppe, "REST+STOR": errRest} {
			var tp *textproto.Error
			if !errors.As(err, &tp) || tp.Code != 550 || !strings.Contains(tp.Msg, "resumed or appended transfer cannot be inspected (ref ") {
				t.Fatalf("%s: %v, want 550 resumed or appended transfer cannot be inspected", verb, err)
			}
		}
		if !bytes.Equal(got, first) {
			t.Fatalf("the refused parts changed the file: %d bytes, want %d", len(got), len(first))
		}
		recs := inspectionRecords(t, path, 2)
		for _, r := range recs {
			if x := r.Inspection; x.Detector != "partial" || x.Action != "block" || x.Ref == "" {
				t.Fatalf("record %+v", x)
			}
		}
	}
}
