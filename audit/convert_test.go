package audit

import (
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/events"
)

// Each event the trail records becomes its kind with its fields; the
// others make no record.
func TestConvert(t *testing.T) {
	s := events.Session{ID: "s1", Listener: "l", Client: "10.0.0.1:5000", User: "alice", Host: "ftp.example", Balancer: "10.0.0.9:1"}
	until := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		e     events.Event
		kind  string
		check func(r Record) bool
	}{
		{events.SessionStarted{Session: s, LocalAddr: "127.0.0.1:21"}, KindSessionStart, func(r Record) bool {
			return r.SessionStart.LocalAddr == "127.0.0.1:21" && r.Host == "ftp.example" && r.Balancer == "10.0.0.9:1"
		}},
		{events.SessionEnded{Session: s, TLSVersion: tls.VersionTLS13, TLSSuite: tls.TLS_AES_128_GCM_SHA256, ClientCertSubject: "CN=a", ClientCertSHA256: "ff", Reason: "x"}, KindSessionEnd, func(r Record) bool {
			e := r.SessionEnd
			return e.TLSVersion == "TLS 1.3" && e.TLSSuite == "TLS_AES_128_GCM_SHA256" && e.CertSubject == "CN=a" && e.CertSHA256 == "ff"
		}},
		{events.Login{Session: s, Result: events.LoginFailed, Reason: "bad", Code: 530, Err: errors.New("secret-free")}, KindLogin, func(r Record) bool {
			return r.Login.Result == "failed" && r.Login.Code == 530 && r.User == "alice"
		}},
		{events.Command{Session: s, Verb: "DELE", Text: "DELE x", Rule: "access.profiles.p.paths[0]", Allowed: false, Code: 550}, KindCommand, func(r Record) bool {
			return r.Command.Allowed != nil && !*r.Command.Allowed && r.Command.Rule != ""
		}},
		{events.Command{Session: s, Verb: "PWD", Text: "PWD", Code: 257}, KindCommand, func(r Record) bool { return r.Command.Allowed == nil }},
		{events.Transfer{Session: s, Verb: "STOR", Upload: true, Path: "/v", BackendPath: "/root/v", Code: 226, Hash: "ab", HashSize: 3, Bytes: 3}, KindTransfer, func(r Record) bool {
			x := r.Transfer
			return x.Direction == "upload" && x.Complete && x.SHA256 == "ab" && x.BackendPath == "/root/v"
		}},
		{events.Transfer{Session: s, Verb: "RETR", Path: "/v", Code: 426, Incomplete: true, Hash: "ab", Err: errors.New("cut")}, KindTransfer, func(r Record) bool {
			x := r.Transfer
			return !x.Complete && x.SHA256 == "" && x.Error == "cut" // no hash of an incomplete transfer
		}},
		{events.DataRefused{Session: s, Reason: events.DataRefusedSourceAddress, Remote: "10.0.0.2:1", Port: 50000}, KindDataRefused, func(r Record) bool {
			return r.DataRefused.Port == 50000 && r.DataRefused.Remote == "10.0.0.2:1"
		}},
		{events.Ban{IP: "10.0.0.1", Added: true, Reason: "login_failed", Until: until, Offences: 2}, KindBan, func(r Record) bool {
			return r.Ban.Address == "10.0.0.1" && r.Ban.Until.Equal(until) && r.Ban.Offences == 2 && r.Session == ""
		}},
		{events.Ban{IP: "10.0.0.1", Reason: "expired"}, KindUnban, func(r Record) bool { return r.Ban.Reason == "expired" }},
		{events.Certificate{Kind: events.CertExpiring, NotAfter: until}, KindCertificate, func(r Record) bool {
			return r.Certificate.Event == "expiring" && r.Certificate.NotAfter.Equal(until)
		}},
		{events.Inspection{Session: s, Path: "/f", Upload: true, Detector: "cards", Count: 11, Action: "block", Ref: "abc"}, KindInspection, func(r Record) bool {
			x := r.Inspection
			return x.Direction == "upload" && x.Detector == "cards" && x.Count == 11 && x.Action == "block" && x.Ref == "abc" && r.Session == "s1"
		}},
		{events.ConfigReload{Err: errors.New("bad file")}, KindConfigReload, func(r Record) bool { return !r.Reload.OK && r.Reload.Error == "bad file" }},
	} {
		r, ok := Convert(tt.e)
		if !ok || r.Kind != tt.kind || !tt.check(r) {
			t.Errorf("%T: %v %+v", tt.e, ok, r)
		}
	}
	for _, e := range []events.Event{events.TLSHandshake{}, events.BackendDial{}, events.PassiveExhausted{}, events.ConnectionRefused{}} {
		if _, ok := Convert(e); ok {
			t.Errorf("%T makes a record", e)
		}
	}
}
