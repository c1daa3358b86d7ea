package eventlog

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/events"
)

var sess = events.Session{ID: "abc123", Listener: "explicit", Client: "192.0.2.7:50000", User: "alice", Host: "ftp.example.test"}

// lines emits es and returns the JSON lines written.
func lines(t *testing.T, es ...events.Event) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	s := New(zerolog.New(&buf).Level(zerolog.DebugLevel))
	for _, e := range es {
		s.Emit(e)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func expect(t *testing.T, line map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if v == nil {
			if _, ok := line[k]; ok {
				t.Errorf("%v: field %q present, want none", line["message"], k)
			}
			continue
		}
		if line[k] != v {
			t.Errorf("%v: %s = %v, want %v", line["message"], k, line[k], v)
		}
	}
}

func TestCommandLine(t *testing.T) {
	l := lines(t, events.Command{Session: sess, Verb: "PASS", Text: "PASS ****", Code: 230})
	if len(l) != 1 {
		t.Fatalf("%d lines", len(l))
	}
	expect(t, l[0], map[string]any{
		"level": "info", "message": "command", "cmd": "PASS ****", "code": 230.0,
		"session": "abc123", "client": "192.0.2.7:50000", "listener": "explicit", "user": "alice", "host": "ftp.example.test",
		"balancer": nil,
	})
}

func TestTransferLine(t *testing.T) {
	ok := events.Transfer{Session: sess, Verb: "STOR", Upload: true, Path: "up.bin", Bytes: 10, Duration: 1500 * time.Millisecond,
		Protected: true, Code: 226, BackendCode: 226, Hash: "ab", HashSize: 10, Offset: "5"}
	cut := events.Transfer{Session: sess, Verb: "RETR", Path: "f", Bytes: 3, Incomplete: true, Err: errors.New("truncated"),
		Code: 426, BackendCode: 226}
	held := events.Transfer{Session: sess, Verb: "RETR", Path: "h", Bytes: 0, Code: 550, BackendCode: 226, Incomplete: true,
		Held: true, HeldBytes: 100, HeldOnDisk: 40}
	l := lines(t, ok, cut, held)
	if len(l) != 3 {
		t.Fatalf("%d lines", len(l))
	}
	expect(t, l[0], map[string]any{
		"level": "info", "message": "transfer", "cmd": "STOR", "direction": "upload", "path": "up.bin", "bytes": 10.0,
		"duration_seconds": 1.5, "code": 226.0, "backend_code": nil, "sha256": "ab", "size": 10.0, "offset": "5", "protected": true,
	})
	expect(t, l[1], map[string]any{
		"level": "warn", "message": "transfer", "direction": "download", "code": 426.0, "backend_code": 226.0,
		"incomplete": true, "error": "truncated", "sha256": nil, "held_bytes": nil,
	})
	expect(t, l[2], map[string]any{"message": "transfer", "code": 550.0, "bytes": 0.0, "held_bytes": 100.0, "held_on_disk": 40.0})
}

func TestSessionLines(t *testing.T) {
	l := lines(t,
		events.SessionStarted{Session: sess},
		events.SessionEnded{Session: sess, Duration: 2 * time.Second, BytesUp: 1, BytesDown: 2, Reason: "client sent QUIT",
			TLSVersion: tls.VersionTLS13, TLSSuite: tls.TLS_AES_128_GCM_SHA256},
		events.ConnectionRefused{Session: sess, Reason: events.RefusedBanned, Err: errors.New("banned")},
		events.Ban{IP: "192.0.2.7", Added: true}, // not a line of this sink
	)
	if len(l) != 3 {
		t.Fatalf("%d lines: %v", len(l), l)
	}
	expect(t, l[0], map[string]any{"level": "debug", "message": "session start"})
	expect(t, l[1], map[string]any{
		"level": "info", "message": "session end", "tls_version": "TLS 1.3", "tls_suite": "TLS_AES_128_GCM_SHA256",
		"bytes_up": 1.0, "bytes_down": 2.0, "duration_seconds": 2.0, "reason": "client sent QUIT",
	})
	expect(t, l[2], map[string]any{"level": "warn", "message": "connection refused", "error": "banned"})
}

func TestDataRefusedLines(t *testing.T) {
	l := lines(t,
		events.DataRefused{Session: sess, Reason: events.DataRefusedSourceAddress, Remote: "192.0.2.8:4000", Port: 50001},
		events.DataRefused{Session: sess, Reason: events.DataRefusedTLSResumption, Err: errors.New("not resumed"), Remote: "192.0.2.7:4001", Port: 50001},
	)
	if len(l) != 2 {
		t.Fatalf("%d lines", len(l))
	}
	expect(t, l[0], map[string]any{
		"level": "warn", "message": "data connection from another address than the control connection: refused",
		"remote": "192.0.2.8:4000", "control": "192.0.2.7", "port": 50001.0,
	})
	expect(t, l[1], map[string]any{
		"message": "data connection refused: waiting for another until the accept deadline", "error": "not resumed",
	})
}

func TestLoginLines(t *testing.T) {
	anon := sess
	anon.User = "anonymous"
	l := lines(t,
		events.Login{Session: sess, Result: events.LoginOK, Code: 230, Factors: []string{"password", "totp"}, BackendUser: "partner"},
		events.Login{Session: sess, Result: events.LoginOK, Code: 230, BackendUser: "alice"},
		events.Login{Session: sess, Result: events.LoginFailed, Reason: "wrong or replayed totp code", Code: 530, Err: errors.New("auth: denied")},
		events.Login{Session: anon, Result: events.LoginRefused, Reason: events.LoginReasonAnonymous, Code: 530},
		events.Login{Session: sess, Result: events.LoginBackendFailed, Reason: events.LoginReasonMappedRefused, Code: 421, BackendUser: "partner", BackendCode: 530},
		events.Login{Session: sess, Result: events.LoginRefused, Reason: "something new", Code: 530},
	)
	if len(l) != 6 {
		t.Fatalf("%d lines", len(l))
	}
	expect(t, l[0], map[string]any{"message": "login succeeded", "level": "info", "user": "alice", "backend_user": "partner", "session": "abc123"})
	if f, _ := l[0]["factors"].([]any); len(f) != 2 || f[1] != "totp" {
		t.Errorf("factors = %v", l[0]["factors"])
	}
	expect(t, l[1], map[string]any{"message": "login succeeded", "backend_user": nil, "factors": nil})
	expect(t, l[2], map[string]any{"message": "login failed", "level": "warn", "code": float64(530), "reason": "wrong or replayed totp code", "error": "auth: denied"})
	expect(t, l[3], map[string]any{"message": "anonymous login refused", "level": "warn", "user": "anonymous"})
	expect(t, l[4], map[string]any{"message": "the backend refused the mapped account", "level": "error", "backend_user": "partner", "backend_code": float64(530), "code": float64(421)})
	expect(t, l[5], map[string]any{"message": "login refused", "reason": "something new"})
}

// An inspection finding: a warning naming the detector, the count, the
// action and the reference id.
func TestInspectionLine(t *testing.T) {
	ls := lines(t, events.Inspection{Session: events.Session{ID: "s9", User: "bob"}, Path: "/in/a.txt", Upload: true,
		Detector: "cards", Count: 11, Action: "block", Ref: "abc"})
	if len(ls) != 1 {
		t.Fatalf("%v", ls)
	}
	l := ls[0]
	if l["level"] != "warn" || l["message"] != "content inspection finding" || l["session"] != "s9" || l["user"] != "bob" ||
		l["direction"] != "upload" || l["detector"] != "cards" || l["count"] != float64(11) || l["action"] != "block" || l["ref"] != "abc" {
		t.Fatalf("%v", l)
	}
}

// TestBackendHealthLines: a change of a backend's state is one line (warn
// when down, with the error); checks and releases write none.
func TestBackendHealthLines(t *testing.T) {
	ls := lines(t,
		events.BackendCheck{Backend: "a", Duration: time.Millisecond, Up: true},
		events.BackendHealth{Backend: "a", Address: "10.0.0.1:21", Up: false, Err: errors.New("connection refused")},
		events.BackendHealth{Backend: "a", Address: "10.0.0.1:21", Up: true},
		events.BackendReleased{Session: sess, Backend: "a"},
	)
	if len(ls) != 2 {
		t.Fatalf("%d lines: %v", len(ls), ls)
	}
	expect(t, ls[0], map[string]any{"level": "warn", "message": "backend down", "backend": "a", "address": "10.0.0.1:21", "error": "connection refused"})
	expect(t, ls[1], map[string]any{"level": "info", "message": "backend up", "backend": "a", "error": nil})
}
