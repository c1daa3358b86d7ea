package metrics

import (
	"crypto/tls"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/events"
)

func TestVerbIsBounded(t *testing.T) {
	for in, want := range map[string]string{"retr": "RETR", "EPSV": "EPSV", "XYZZY": "other", "": "other", "PASS": "PASS", "SITE": "SITE"} {
		if got := Verb(in); got != want {
			t.Errorf("Verb(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEmit: each event moves its metric.
func TestEmit(t *testing.T) {
	m := New()
	m.Watch(State{
		PassiveInUse: func() int { return 3 }, BansActive: func() int { return 2 },
		TrackedAddresses: func() int { return 5 }, CertNotAfter: func() time.Time { return time.Unix(1700000000, 0) },
	})
	s := events.Session{ID: "x", Listener: "ftps"}
	for _, e := range []events.Event{
		events.SessionStarted{Session: s},
		events.SessionStarted{Session: s},
		events.SessionEnded{Session: s},
		events.ConnectionRefused{Session: s, Reason: events.RefusedBanned},
		events.TLSHandshake{Session: s, OK: true, Version: tls.VersionTLS13},
		events.TLSHandshake{Session: s, Err: errors.New("bad")},
		events.Login{Session: s, Result: events.LoginFailed},
		events.Command{Session: s, Verb: "retr"},
		events.Command{Session: s, Verb: "FOO"},
		events.Transfer{Session: s, Upload: true, Bytes: 2048, Duration: time.Second, Code: 226},
		events.Transfer{Session: s, Bytes: 10, Code: 426},
		events.DataRefused{Session: s, Reason: events.DataRefusedSourceAddress},
		events.PassiveExhausted{Session: s, PerIP: true},
		events.BackendDial{Session: s, Err: errors.New("refused")},
		events.BackendDial{Session: s, Duration: time.Millisecond},
		events.Ban{IP: "192.0.2.1", Added: true},
		events.Ban{IP: "192.0.2.1"},
		events.Certificate{Kind: events.CertReloaded},
		events.ConfigReload{OK: false},
		events.Inspection{Session: s, Detector: "cards", Count: 11, Action: "block"},
		events.Inspected{Session: s, Upload: true, Bytes: 4096},
	} {
		m.Emit(e)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{
		`ftpsgate_connections_accepted_total{listener="ftps"} 2`,
		`ftpsgate_sessions_active{listener="ftps"} 1`,
		`ftpsgate_connections_refused_total{listener="ftps",reason="banned"} 1`,
		`ftpsgate_tls_handshakes_total{listener="ftps",result="ok",version="1.3"} 1`,
		`ftpsgate_tls_handshakes_total{listener="ftps",result="failed",version="none"} 1`,
		`ftpsgate_logins_total{listener="ftps",result="failed"} 1`,
		`ftpsgate_commands_total{verb="RETR"} 1`,
		`ftpsgate_commands_total{verb="other"} 1`,
		`ftpsgate_transfers_total{direction="upload",result="ok"} 1`,
		`ftpsgate_transfers_total{direction="download",result="failed"} 1`,
		`ftpsgate_transfer_bytes_total{direction="upload"} 2048`,
		`ftpsgate_transfer_duration_seconds_sum{direction="upload"} 1`,
		`ftpsgate_data_connections_refused_total{listener="ftps",reason="source_address"} 1`,
		`ftpsgate_passive_pool_exhausted_total{scope="per_ip"} 1`,
		`ftpsgate_backend_dial_errors_total 1`,
		`ftpsgate_backend_dial_duration_seconds_count 1`,
		`ftpsgate_bans_added_total 1`,
		`ftpsgate_certificate_reloads_total{result="ok"} 1`,
		`ftpsgate_config_reloads_total{result="failed"} 1`,
		`ftpsgate_inspection_verdicts_total{action="block",detector="cards"} 1`,
		`ftpsgate_inspection_scanned_bytes_total{direction="upload"} 4096`,
		`ftpsgate_passive_ports_in_use 3`,
		`ftpsgate_bans_active 2`,
		`ftpsgate_tracked_addresses 5`,
		`ftpsgate_certificate_expiry_timestamp_seconds 1.7e+09`,
		`process_cpu_seconds_total`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want+"\n") && !strings.Contains(out, want+" ") {
			t.Errorf("missing %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

// TestBackendMetrics: checks set the up gauge and count; dials and
// releases move the sessions gauge per backend.
func TestBackendMetrics(t *testing.T) {
	m := New()
	s := events.Session{ID: "x", Listener: "ftps"}
	for _, e := range []events.Event{
		events.BackendCheck{Backend: "a", Duration: time.Millisecond, Up: true},
		events.BackendCheck{Backend: "b", Duration: time.Second, Err: errors.New("refused")},
		events.BackendDial{Session: s, Backend: "a", Duration: time.Millisecond},
		events.BackendDial{Session: s, Backend: "a", Duration: time.Millisecond},
		events.BackendDial{Session: s, Backend: "b", Err: errors.New("refused")},
		events.BackendReleased{Session: s, Backend: "a"},
	} {
		m.Emit(e)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{
		`ftpsgate_backend_up{backend="a"} 1`,
		`ftpsgate_backend_up{backend="b"} 0`,
		`ftpsgate_backend_checks_total{backend="a",result="ok"} 1`,
		`ftpsgate_backend_checks_total{backend="b",result="failed"} 1`,
		`ftpsgate_backend_check_duration_seconds_count{backend="b"} 1`,
		`ftpsgate_backend_sessions{backend="a"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(out, `ftpsgate_backend_sessions{backend="b"}`) {
		t.Error("a failed dial counted a session")
	}
}

// TestRemovedBackendSessions: a backend a reload removed keeps its
// sessions series while sessions hold it, loses it with the last one, and
// gets it back when added again; one removed with no session loses it at
// once.
func TestRemovedBackendSessions(t *testing.T) {
	m := New()
	s := events.Session{ID: "x", Listener: "ftps"}
	has := func(series string) bool {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return strings.Contains(rec.Body.String(), series)
	}
	a, b := `ftpsgate_backend_sessions{backend="a"}`, `ftpsgate_backend_sessions{backend="b"}`
	for _, e := range []events.Event{
		events.BackendDial{Session: s, Backend: "a"},
		events.BackendDial{Session: s, Backend: "a"},
		events.BackendDial{Session: s, Backend: "b"},
		events.BackendReleased{Session: s, Backend: "b"},
		events.BackendConfig{Backend: "a", Change: events.BackendRemoved},
		events.BackendConfig{Backend: "b", Change: events.BackendRemoved},
		events.BackendReleased{Session: s, Backend: "a"},
	} {
		m.Emit(e)
	}
	if !has(a + " 1\n") {
		t.Errorf("removed backend a with one session left: want %s 1", a)
	}
	if has(b) {
		t.Errorf("removed backend b with no session: %s still there", b)
	}
	m.Emit(events.BackendReleased{Session: s, Backend: "a"})
	if has(a) {
		t.Errorf("removed backend a after its last session: %s still there", a)
	}
	m.Emit(events.BackendConfig{Backend: "a", Change: events.BackendAdded, Checked: true})
	m.Emit(events.BackendDial{Session: s, Backend: "a"})
	m.Emit(events.BackendReleased{Session: s, Backend: "a"})
	if !has(a + " 0\n") {
		t.Errorf("backend a added again: want %s 0 after its session", a)
	}
}

// TestRemovedBackendLateSession: a session that chose a backend before the
// reload that removed it (its dial was still running) counts on it after
// the removal; the series goes with that session, it does not stay at 0
// for good.
func TestRemovedBackendLateSession(t *testing.T) {
	m := New()
	s := events.Session{ID: "x", Listener: "ftps"}
	series := `ftpsgate_backend_sessions{backend="b"}`
	m.Emit(events.BackendConfig{Backend: "b", Change: events.BackendRemoved})
	m.Emit(events.BackendDial{Session: s, Backend: "b"})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), series+" 1\n") {
		t.Errorf("the late session on removed b is not counted")
	}
	m.Emit(events.BackendReleased{Session: s, Backend: "b"})
	rec = httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if strings.Contains(rec.Body.String(), series) {
		t.Errorf("removed backend b after its late session: %s still there", series)
	}
}
