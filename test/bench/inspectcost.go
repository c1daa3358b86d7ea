package main

import (
	"context"
	"fmt"
)

// The inspection part of the features phase: four fresh gateways alike
// (hash: uploads, the default) but for content inspection:
//
//   - none: no inspection, the baseline;
//   - dlp: inspect.dlp with its defaults (cards, IBANs, SSNs, e-mails,
//     file type; alert), directions both;
//   - hold: the same and inspect.downloads: hold (a download read whole
//     from the backend and judged before its first byte goes out; the
//     bench's random file is clean, so every download is released: the
//     release path is what is measured), hold.max_bytes above the file;
//   - icap: inspect.icap against c-icap's virus_scan (simple mode) over
//     clamd, directions both, max_size above the file (icapscan.go); the
//     scanner's CPU, c-icap's and clamd's, is a row of its own.
//
// Through each, a curl download and upload of the big file, inspRounds
// rounds (the order reversed every other one): MB/s, gateway CPU s/GiB,
// the download's time to its first byte, and the differences to none.

// The inspection table's columns.
const (
	iNone = "none"
	iDLP  = "dlp"
	iHold = "hold"
	iICAP = "icap"
)

var inspKeys = []string{iNone, iDLP, iHold, iICAP}

// inspBlocks are the passive ranges of the four gateways: the features
// phase's, free again once the audit gateways have stopped.
var inspBlocks = map[string]portBlock{iNone: featureBlocks[0], iDLP: featureBlocks[1], iHold: featureBlocks[2], iICAP: edgeBlock}

// defineInspectTable adds the inspection table to e.feat and defines its
// rows.
func defineInspectTable(e *env) *results {
	tab := newTable(inspKeys, map[string]string{
		iNone: "no inspection",
		iDLP:  "inspect.dlp (both)",
		iHold: "inspect.dlp + downloads: hold",
		iICAP: "inspect.icap (c-icap + ClamAV)",
	}, []quotient{
		{iDLP, iNone, "dlp − none", true},
		{iHold, iNone, "hold − none", true},
		{iICAP, iNone, "icap − none", true},
	})
	tab.noLegend = true
	tab.title = "features: content inspection (four gateways alike but for it; the last three columns are differences to none, in the row's unit)"
	e.feat = append(e.feat, tab)
	sec := fmt.Sprintf("relay: curl, %s file (random bytes: clean), FTPS→plain vsftpd, %s", human(e.bigSize), plural(e.inspRounds, "round"))
	for _, d := range []string{"download", "upload"} {
		p := "insp/" + d + "/"
		tab.define(metric{id: p + "mbps", label: "curl " + d + ", MB/s", prec: 0, higher: true, section: sec})
		tab.define(metric{id: p + "cpu", label: "curl " + d + ", gateway CPU s/GiB", prec: 2, section: sec})
		if d == "download" {
			tab.define(metric{id: p + "ttfb", label: "curl download, time to first byte (from curl's start), ms", prec: 0, section: sec})
		}
		tab.define(metric{id: p + "side", label: "curl " + d + ", scanner CPU s/GiB (c-icap + clamd)", prec: 2, section: sec})
	}
	return tab
}

// inspYAML is the inspect section of a column's gateway (with hash:
// uploads on every one). A limit of twice the file covers it.
func inspYAML(key, icapURL string, size int64) string {
	limit := fmt.Sprintf("%dMiB", 2*size>>20+1)
	y := hashYAML("uploads")
	switch key {
	case iDLP:
		y += "inspect:\n  dlp:\n    enabled: true\n    directions: both\n"
	case iHold:
		y += "inspect:\n  dlp:\n    enabled: true\n    directions: both\n  downloads: hold\n  hold:\n    max_bytes: " + limit + "\n"
	case iICAP:
		y += fmt.Sprintf("inspect:\n  icap:\n    servers: [%q]\n    directions: both\n    max_size: %s\n    timeout: 120s\n", icapURL, limit)
	}
	return y
}

// measureInspectGateways starts the scanner and the four gateways,
// measures, and stops them.
func measureInspectGateways(ctx context.Context, e *env, tab *results) {
	ts := make([]*target, len(inspKeys))
	var sc *scanner
	for i, k := range inspKeys {
		t := &target{key: k}
		ts[i] = t
		if err := checkBindable(inspBlocks[k]); err != nil {
			t.na = err.Error()
			continue
		}
		if k == iICAP {
			var err error
			if sc, err = startScanner(ctx, e, 2*e.bigSize); err != nil {
				t.na = "no ICAP scanner: " + oneLine(err)
				logf("features: inspection %s: n/a: %s", k, t.na)
				continue
			}
			defer sc.stop()
			t.side = sc.cpu()
		}
		url := ""
		if sc != nil {
			url = sc.url
		}
		g, err := startGatewayWith(ctx, e, "ftpsgate-inspect-"+k, e.plainBackend, "none", inspBlocks[k], inspYAML(k, url, e.bigSize))
		if err != nil {
			t.na = "gateway did not start: " + oneLine(err)
			logf("features: inspection %s: n/a: %s", k, t.na)
			continue
		}
		defer g.proc.stop()
		t.addr, t.cpu, t.pid = g.Addr, processCPU(g.proc.pid()), g.proc.pid()
	}
	measureCurl(ctx, e, tab, ts, "insp", e.inspRounds)
}
