package main

import (
	"context"
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/dlp"
)

// The inspect section: checked with its keys named, off by default, and
// composed into the per-transfer filter whose findings become events.
func TestInspectConfig(t *testing.T) {
	for _, tt := range []struct{ yaml, key string }{
		{"inspect: {dlp: {enabled: true, directions: sideways}}\n", "inspect.dlp.directions"},
		{"inspect: {dlp: {enabled: true, cards: {action: shout}}}\n", "inspect.dlp.cards.action"},
		{"inspect: {dlp: {enabled: true, cards: {threshold: -1}}}\n", "inspect.dlp.cards.threshold"},
		{"inspect: {dlp: {enabled: true, patterns: [{name: x, regexp: '('}]}}\n", "inspect.dlp.patterns[0].regexp"},
		{"inspect: {dlp: {enabled: true, file_types: {deny: [exe]}}}\n", "inspect.dlp.file_types.deny[0]"},
		{"inspect: {dlp: {enabled: true, gzip: {max_bytes: lots}}}\n", "inspect.dlp.gzip.max_bytes"},
		{"inspect: {dlp: {enabled: true, keywords: {enabled: true}}}\n", "inspect.dlp.keywords.words"},
	} {
		_, err := loadFile(writeConfig(t, minimalYAML+tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.key+":") {
			t.Errorf("%q: %v, want a problem of %s", tt.yaml, err, tt.key)
		}
	}
	cfg, err := loadFile(writeConfig(t, minimalYAML))
	if err != nil || cfg.inspect != nil {
		t.Fatalf("off by default: %v %+v", err, cfg.inspect)
	}
	cfg, err = loadFile(writeConfig(t, minimalYAML+"inspect: {dlp: {enabled: true, directions: both, cards: {threshold: 1, action: block}, "+
		"keywords: {enabled: true, words: [secret]}, patterns: [{name: prj, regexp: 'PRJ-[0-9]+', action: alert}], file_types: {deny: [executable]}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.inspect
	if c == nil || c.Directions != dlp.Both || c.Cards.Action != dlp.Block || c.Cards.Threshold != 1 || !c.Gzip ||
		c.GzipMaxBytes != 1<<30 || len(c.Patterns) != 1 || c.KeywordList[0] != "secret" || c.Emails.Threshold != 100 {
		t.Fatalf("%+v", c)
	}
	var got []events.Event
	hook, err := newInspection(c, events.Func(func(e events.Event) { got = append(got, e) }))
	if err != nil {
		t.Fatal(err)
	}
	fs := hook(filter.Meta{Session: "s1", User: "alice", Direction: filter.Upload, Path: "/a"})
	if len(fs) != 1 {
		t.Fatalf("filters %v", fs)
	}
	_ = fs[0].Write([]byte("4111111111111111 5555555555554444 secret"))
	v, _ := fs[0].Finish(context.Background())
	if !v.Veto || v.Code != 550 {
		t.Fatalf("verdict %+v", v)
	}
	var sawBlock, sawAlert, sawScanned bool
	for _, e := range got {
		switch e := e.(type) {
		case events.Inspection:
			sawBlock = sawBlock || (e.Detector == "cards" && e.Count == 2 && e.Action == "block" && e.Ref != "" && e.ID == "s1" && e.Upload)
			sawAlert = sawAlert || (e.Detector == "keywords" && e.Action == "alert")
		case events.Inspected:
			sawScanned = e.Bytes == 40
		}
	}
	if !sawBlock || !sawAlert || !sawScanned {
		t.Fatalf("events %+v", got)
	}
}
