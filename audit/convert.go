package audit

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/ftpsgate/ftpsgate/events"
)

// IDs makes record IDs unique across the gateway's instances and restarts:
// the instance name, the time in nanoseconds and a counter.
type IDs struct {
	instance string
	n        atomic.Uint64
}

// NewIDs returns IDs for instance ("": the host name).
func NewIDs(instance string) *IDs {
	if instance == "" {
		instance, _ = os.Hostname()
	}
	if instance == "" {
		instance = "ftpsgate"
	}
	return &IDs{instance: instance}
}

// Next returns a fresh ID for a record made at t.
func (g *IDs) Next(t time.Time) string {
	return fmt.Sprintf("%s-%d-%d", g.instance, t.UnixNano(), g.n.Add(1))
}

// Convert makes the record of an event, with the session's fields and the
// kind's part; ok is false for events that have no record (TLS handshakes,
// whose result the session end carries; backend dials; passive-port
// exhaustion; connections refused before their session started). V, ID and
// Time are left for the trail to set.
func Convert(e events.Event) (r Record, ok bool) {
	session := func(s events.Session) {
		r.Session, r.Listener, r.Client, r.Balancer, r.User, r.Host = s.ID, s.Listener, s.Client, s.Balancer, s.User, s.Host
	}
	switch e := e.(type) {
	case events.SessionStarted:
		session(e.Session)
		r.Kind = KindSessionStart
		r.SessionStart = &SessionStart{LocalAddr: e.LocalAddr}
	case events.SessionEnded:
		session(e.Session)
		r.Kind = KindSessionEnd
		end := &SessionEnd{BytesUp: e.BytesUp, BytesDown: e.BytesDown, DurationS: e.Duration.Seconds(), Reason: e.Reason,
			CertSubject: e.ClientCertSubject, CertSHA256: e.ClientCertSHA256}
		if e.TLSVersion != 0 {
			end.TLSVersion, end.TLSSuite = tls.VersionName(e.TLSVersion), tls.CipherSuiteName(e.TLSSuite)
		}
		r.SessionEnd = end
	case events.Login:
		session(e.Session)
		r.Kind = KindLogin
		r.Login = &Login{Result: e.Result, Reason: e.Reason, Factors: e.Factors, BackendUser: e.BackendUser, Code: e.Code}
	case events.Command:
		session(e.Session)
		r.Kind = KindCommand
		c := &Command{Verb: e.Verb, Text: e.Text, Path: e.Path, Rule: e.Rule, Code: e.Code}
		if e.Rule != "" {
			allowed := e.Allowed
			c.Allowed = &allowed
		}
		r.Command = c
	case events.Transfer:
		session(e.Session)
		r.Kind = KindTransfer
		r.Transfer = transfer(e)
	case events.DataRefused:
		session(e.Session)
		r.Kind = KindDataRefused
		r.DataRefused = &DataRefused{Reason: e.Reason, Remote: e.Remote, Port: e.Port}
	case events.Ban:
		r.Kind = KindUnban
		if e.Added {
			r.Kind = KindBan
		}
		r.Ban = &Ban{Address: e.IP, Until: e.Until, Reason: e.Reason, Offences: e.Offences}
	case events.Certificate:
		r.Kind = KindCertificate
		r.Certificate = &Certificate{Event: e.Kind, NotAfter: e.NotAfter, Error: errText(e.Err)}
	case events.Inspection:
		session(e.Session)
		r.Kind = KindInspection
		r.Inspection = &Inspection{Path: e.Path, Direction: direction(e.Upload), Detector: e.Detector, Count: e.Count,
			Action: e.Action, Ref: e.Ref}
	case events.ConfigReload:
		r.Kind = KindConfigReload
		r.Reload = &Reload{OK: e.OK, Error: errText(e.Err)}
	default:
		return r, false
	}
	return r, true
}

func transfer(e events.Transfer) *Transfer {
	t := &Transfer{Verb: e.Verb, Direction: "download", Path: e.Path, BackendPath: e.BackendPath, Bytes: e.Bytes,
		DurationS: e.Duration.Seconds(), Code: e.Code, BackendCode: e.BackendCode, Protected: e.Protected}
	if e.Upload {
		t.Direction = "upload"
	}
	t.Complete = !e.Incomplete && e.OK()
	if t.Complete && e.Hash != "" {
		t.SHA256, t.Size, t.Offset = e.Hash, e.HashSize, e.Offset
	}
	switch {
	case e.Err != nil:
		t.Error = e.Err.Error()
	case e.CloseErr != nil:
		t.Error = "close: " + e.CloseErr.Error()
	}
	return t
}

func direction(upload bool) string {
	if upload {
		return "upload"
	}
	return "download"
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
