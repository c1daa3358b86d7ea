package policy

import (
	"bytes"
	"crypto/tls"
)

// bindingPrefix marks the control session a ticket belongs to.
const bindingPrefix = "ftpsgate-session:"

// BindSession returns a clone of base for one FTP session whose tickets
// carry the session's id, and which resumes only tickets carrying it.
//
// Use the clone for the session's control connection and all its data
// connections. A data connection's handshake then resumes only this
// session's TLS session: a client that resumes another session's ticket,
// or does a full handshake, ends with ConnectionState().DidResume false,
// which is how data_session_reuse: required tells a stolen or foreign data
// connection from the client's own (the check vsftpd and FileZilla Server
// make).
func BindSession(base *tls.Config, sessionID string) *tls.Config {
	cfg := base.Clone()
	tag := []byte(bindingPrefix + sessionID)
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ss.Extra = append(ss.Extra, tag)
		return cfg.EncryptTicket(cs, ss)
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := cfg.DecryptTicket(identity, cs)
		if err != nil || ss == nil {
			return nil, err
		}
		for _, e := range ss.Extra {
			if bytes.Equal(e, tag) {
				return ss, nil
			}
		}
		return nil, nil // another session's ticket: full handshake, DidResume false
	}
	return cfg
}
