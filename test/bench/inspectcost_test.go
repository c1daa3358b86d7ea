package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseCurlWriteOut(t *testing.T) {
	n, ttfb, err := parseCurlWriteOut("1073741824 0.013542")
	if err != nil || n != 1<<30 || ttfb != 13542*time.Microsecond {
		t.Errorf("got %d, %v, %v", n, ttfb, err)
	}
	for _, s := range []string{"", "1073741824", "12 x", "x 0.1", "12 -1", "1 2 3"} {
		if _, _, err := parseCurlWriteOut(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}

// Each column's gateway differs from the baseline only in its inspect
// section, and its limits cover the file.
func TestInspYAML(t *testing.T) {
	const size = 1 << 30
	base := inspYAML(iNone, "", size)
	if strings.Contains(base, "inspect") || !strings.Contains(base, `hash: "uploads"`) {
		t.Errorf("baseline:\n%s", base)
	}
	for _, c := range []struct {
		key  string
		want []string
	}{
		{iDLP, []string{"  dlp:\n    enabled: true\n    directions: both\n"}},
		{iHold, []string{"  dlp:\n    enabled: true\n    directions: both\n", "  downloads: hold\n", "    max_bytes: 2049MiB\n"}},
		{iICAP, []string{`    servers: ["icap://127.0.0.1:1/avscan"]`, "    directions: both\n", "    max_size: 2049MiB\n"}},
	} {
		y := inspYAML(c.key, "icap://127.0.0.1:1/avscan", size)
		rest, ok := strings.CutPrefix(y, base+"inspect:\n")
		if !ok {
			t.Errorf("%s: not the baseline and an inspect section:\n%s", c.key, y)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(rest, w) {
				t.Errorf("%s: %q missing in\n%s", c.key, w, rest)
			}
		}
		if c.key != iICAP && strings.Contains(rest, "icap") || c.key == iICAP && strings.Contains(rest, "dlp") {
			t.Errorf("%s: another filter in\n%s", c.key, rest)
		}
	}
}
