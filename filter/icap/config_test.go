package icap_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/filter/icap"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

func TestParseServer(t *testing.T) {
	for in, want := range map[string]icap.Server{
		"icap://scan.example:1345/avscan":     {Addr: "scan.example:1345", Service: "/avscan"},
		"icap://10.0.0.1/srv_clamav":          {Addr: "10.0.0.1:1344", Service: "/srv_clamav"},
		"icap://[::1]/virus_scan?mode=simple": {Addr: "[::1]:1344", Service: "/virus_scan?mode=simple"},
		" icap://h:1/a/b ":                    {Addr: "h:1", Service: "/a/b"},
		"icap://127.0.0.1:11344/virus%20scan": {Addr: "127.0.0.1:11344", Service: "/virus%20scan"},
	} {
		got, err := icap.ParseServer(in)
		if err != nil || got != want {
			t.Errorf("ParseServer(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "http://h/x", "icaps://h/x", "icap://h", "icap://h/", "icap:///x", "icap://h:0/x", "icap://h:99999/x", "icap://u:p@h/x", "icap://h/x#f"} {
		if s, err := icap.ParseServer(in); err == nil {
			t.Errorf("ParseServer(%q) = %+v, want an error", in, s)
		}
	}
}

func TestParseEnums(t *testing.T) {
	if a, err := icap.ParseAction("Allow", false); err != nil || a != icap.Allow {
		t.Error(a, err)
	}
	if _, err := icap.ParseAction("on_error", false); err == nil {
		t.Error("on_error accepted for on_error itself")
	}
	if a, err := icap.ParseAction("on_error", true); err != nil || a != icap.OnError {
		t.Error(a, err)
	}
	for in, want := range map[string]int{"auto": icap.PreviewAuto, "": icap.PreviewAuto, "off": icap.PreviewOff, "0": icap.PreviewOff, "4096": 4096} {
		if got, err := icap.ParsePreview(in); err != nil || got != want {
			t.Errorf("ParsePreview(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := icap.ParsePreview("-5"); err == nil {
		t.Error("ParsePreview(-5) accepted")
	}
	if d, err := icap.ParseDirections("downloads"); err != nil || d != icap.Downloads {
		t.Error(d, err)
	}
	if m, err := icap.ParsePartialMode("scan"); err != nil || m != icap.PartialScan {
		t.Error(m, err)
	}
	if m, err := icap.ParsePartialMode(""); err != nil || m != icap.PartialBlock {
		t.Error(m, err)
	}
	if _, err := icap.ParsePartialMode("allow"); err == nil {
		t.Error("ParsePartialMode(allow) accepted")
	}
	if _, err := icap.ParseDirections("sideways"); err == nil {
		t.Error("ParseDirections(sideways) accepted")
	}
}

// The zero value blocks on error (the safe default); Validate names each
// bad key.
func TestValidate(t *testing.T) {
	err := (&icap.Config{Servers: []icap.Server{{Addr: "nohost", Service: "x"}}, Timeout: -1, Preview: -2, MaxSize: -1,
		OnError: icap.OnError, OverMaxSize: 7, Directions: 9, Partial: 5, MaxIdle: -1}).Validate()
	var keys []string
	for _, e := range confkey.List(err) {
		keys = append(keys, e.Key)
	}
	want := "servers[0] timeout preview max_size on_error over_max_size directions partial_transfers max_idle_connections"
	if strings.Join(keys, " ") != want {
		t.Fatalf("keys %v, want %s", keys, want)
	}
	err = (&icap.Config{}).Validate()
	var ke *confkey.Error
	if !errors.As(err, &ke) || ke.Key != "servers" {
		t.Fatalf("no servers: %v", err)
	}
	if _, err := icap.New(icap.Config{}); err == nil {
		t.Fatal("New accepted a config without servers")
	}
}
