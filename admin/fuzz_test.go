package admin

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode"
)

// FuzzParseBanRequest: no body panics the parser; what it accepts is a valid
// order, and writing the order back as a request parses to the same order.
func FuzzParseBanRequest(f *testing.F) {
	for _, s := range []string{
		`{"ip":"192.0.2.1","duration":"1h","reason":"spraying"}`,
		`{"ip":"2001:db8::1"}`,
		`{"ip":"::ffff:10.0.0.1","duration":"0s"}`,
		`{"ip":"fe80::1%eth0","duration":"1.5h"}`,
		`{"ip":"192.0.2.1","duration":"-1h"}`,
		`{"ip":"192.0.2.1","reason":"\u00e9t\u00e9"}`,
		`{"ip":"1.2.3.4"} x`,
		`[]`,
		`{"ip":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := parseBanRequest(bytes.NewReader(body))
		if err != nil {
			return
		}
		if !o.ip.IsValid() || o.ip.Is4In6() || o.ip.Zone() != "" {
			t.Fatalf("accepted address %v", o.ip)
		}
		if o.dur < 0 || o.dur > maxBan {
			t.Fatalf("accepted duration %v", o.dur)
		}
		if o.reason == "" || len(o.reason) > maxReasonLen {
			t.Fatalf("accepted reason %q", o.reason)
		}
		for _, r := range o.reason {
			if !unicode.IsPrint(r) {
				t.Fatalf("accepted reason %q", o.reason)
			}
		}
		again, _ := json.Marshal(BanRequest{IP: o.ip.String(), Duration: o.dur.String(), Reason: o.reason})
		o2, err := parseBanRequest(bytes.NewReader(again))
		if err != nil || o2 != o {
			t.Fatalf("%s -> %+v; %s -> %+v, %v", body, o, again, o2, err)
		}
	})
}

// FuzzParseAddress: no address panics the parser, and an accepted one
// parses again to the same endpoint.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9090", "[::1]:9090", "localhost:1", ":9090", "unix:/run/x.sock",
		"unix:", "[fe80::1%eth0]:80", "0.0.0.0:0", "[::ffff:127.0.0.1]:9090", "h:p", "::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := parseAddress(s)
		if err != nil {
			return
		}
		ep2, err := parseAddress(ep.String())
		if err != nil || ep2 != ep {
			t.Fatalf("%q -> %+v; %q -> %+v, %v", s, ep, ep.String(), ep2, err)
		}
	})
}
