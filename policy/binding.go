package policy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// SessionReuse is what a client's protected data connection must resume
// (tls.data_session_reuse). The zero value is the default, ReuseUser.
type SessionReuse int

// The data-session reuse modes, strongest first after the default.
const (
	// ReuseUser (default): the data connection's handshake must resume the
	// TLS session of its own control connection, or that of another live
	// control session logged in as the same user from the same client
	// address. Clients that keep several control connections and one TLS
	// session cache per host (rclone) resume a sibling's session; a thief
	// would need the user's login.
	ReuseUser SessionReuse = iota
	// ReuseSession (strict): only the TLS session of the data connection's
	// own control connection (vsftpd's require_ssl_reuse).
	ReuseSession
	// ReuseOptional: any handshake, resumed or not, is accepted.
	ReuseOptional
)

// ParseSessionReuse parses "user", "session" or "optional". "required", the
// name of the one checking mode before there were two, is an alias of
// "user", the default.
func ParseSessionReuse(s string) (SessionReuse, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "user", "required", "":
		return ReuseUser, nil
	case "session":
		return ReuseSession, nil
	case "optional":
		return ReuseOptional, nil
	}
	return 0, fmt.Errorf("%q is not a data_session_reuse mode (want user, session or optional; required means user)", s)
}

func (m SessionReuse) String() string {
	switch m {
	case ReuseUser:
		return "user"
	case ReuseSession:
		return "session"
	case ReuseOptional:
		return "optional"
	}
	return fmt.Sprintf("SessionReuse(%d)", int(m))
}

// Required reports whether a data connection that did not resume a
// session it may resume is refused.
func (m SessionReuse) Required() bool { return m != ReuseOptional }

// SessionPeer is what the gateway knows of one live control session, for
// the resumption check.
type SessionPeer struct {
	ID       string
	Addr     netip.Addr // the client's address (the PROXY header's when the protocol is on)
	User     string     // as the client sent it; "" before USER
	LoggedIn bool
}

// Why a data connection's handshake may not resume a ticket.
var (
	ErrOtherSession  = errors.New("the ticket belongs to another control session (data_session_reuse: session)")
	ErrSessionEnded  = errors.New("the ticket's control session has ended")
	ErrNotLoggedIn   = errors.New("this control session is not logged in")
	ErrPeerNotLogged = errors.New("the ticket's control session is not logged in")
	ErrOtherUser     = errors.New("the ticket's control session is logged in as another user")
	ErrOtherAddress  = errors.New("the ticket's control session comes from another client address")
)

// MayResume decides whether a handshake of control session self (on its
// control or a data connection) may resume a ticket issued to control
// session owner; ownerLive is false when owner has ended or is unknown. A
// nil error resumes.
//
// Its own ticket always resumes. Under ReuseOptional any ticket does. Under
// ReuseSession no other one does. Under ReuseUser another session's ticket
// resumes only when both sessions are logged in, as the same user (byte for
// byte) and from the same client address, and the owner is still live.
func MayResume(mode SessionReuse, self, owner SessionPeer, ownerLive bool) error {
	switch {
	case owner.ID == self.ID:
		return nil
	case mode == ReuseOptional:
		return nil
	case mode != ReuseUser:
		return ErrOtherSession
	case !ownerLive:
		return ErrSessionEnded
	case !self.LoggedIn:
		return ErrNotLoggedIn
	case !owner.LoggedIn:
		return ErrPeerNotLogged
	case owner.User != self.User:
		return ErrOtherUser
	case !owner.Addr.IsValid() || owner.Addr != self.Addr:
		return ErrOtherAddress
	}
	return nil
}

// Peers looks up the gateway's live control sessions.
type Peers interface {
	// Peer returns what is known of the live session id; false when it has
	// ended or was never registered.
	Peer(id string) (SessionPeer, bool)
	// AwaitLogin is Peer once session id is logged in or has ended, or
	// after wait, whichever comes first.
	AwaitLogin(id string, wait time.Duration) (SessionPeer, bool)
}

// Binding ties one FTP session's TLS config to its control session.
type Binding struct {
	Session string // this control session's id
	Mode    SessionReuse
	// Peers knows the live sessions (ReuseUser); nil: only the session's
	// own tickets resume.
	Peers Peers
	// LoginWait is how long a handshake offering the ticket of a sibling
	// that is still logging in waits for that login (zero: not at all).
	// Clients open control connections in parallel and take the newest
	// ticket from their cache, often one whose connection is between AUTH
	// and PASS. A sibling that does not log in within it is refused.
	LoginWait time.Duration
	// Foreign, if set, hears of every ticket of another session offered,
	// with the owner's id and why it was not resumed (nil: it was). It runs
	// on the handshake's goroutine.
	Foreign func(owner string, err error)
}

// bindingPrefix marks the control session a ticket belongs to.
const bindingPrefix = "ftpsgate-session:"

// BindSession returns a clone of base for one FTP session whose tickets
// carry the session's id, and which resumes a ticket only when MayResume
// allows it. Under ReuseOptional it returns base itself: any ticket resumes.
//
// Use the clone for the session's control connection and all its data
// connections. Tickets are sealed and opened with base's keys, so a clone
// follows base's key rotation (TicketKeys) however old the session is. A handshake offering a ticket it may not resume becomes a
// full handshake, so ConnectionState().DidResume is false, which is how
// data_session_reuse tells a stolen or foreign data connection from the
// client's own (vsftpd and FileZilla Server check the same, per session).
//
// The ticket can only carry the session id: a control connection's TLS
// session, and its tickets, exist before USER. Who the session belongs to
// is asked of b.Peers when a ticket is offered, so a ticket of a session
// that has ended, or whose user or address differ, does not resume.
func BindSession(base *tls.Config, b Binding) *tls.Config {
	if b.Mode == ReuseOptional {
		return base
	}
	cfg := base.Clone()
	tag := []byte(bindingPrefix + b.Session)
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ss.Extra = append(ss.Extra, tag)
		return base.EncryptTicket(cs, ss)
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := base.DecryptTicket(identity, cs)
		if err != nil || ss == nil {
			return nil, err
		}
		owner, ok := ticketOwner(ss)
		if !ok {
			return nil, nil // not one of ours: full handshake
		}
		if owner == b.Session {
			return ss, nil
		}
		var self, peer SessionPeer
		var live bool
		if b.Peers != nil {
			self, _ = b.Peers.Peer(b.Session)
			peer, live = b.Peers.Peer(owner)
		}
		self.ID, peer.ID = b.Session, owner
		err = MayResume(b.Mode, self, peer, live)
		if errors.Is(err, ErrPeerNotLogged) && b.LoginWait > 0 {
			peer, live = b.Peers.AwaitLogin(owner, b.LoginWait)
			peer.ID = owner
			err = MayResume(b.Mode, self, peer, live)
		}
		if b.Foreign != nil {
			b.Foreign(owner, err)
		}
		if err != nil {
			return nil, nil // full handshake, DidResume false
		}
		return ss, nil
	}
	return cfg
}

// ticketOwner is the control session a ticket was issued to. Extra holds
// exactly one tag: tickets are issued afresh (Extra empty) on every
// handshake, resumed or not.
func ticketOwner(ss *tls.SessionState) (string, bool) {
	for _, e := range ss.Extra {
		if id, ok := bytes.CutPrefix(e, []byte(bindingPrefix)); ok {
			return string(id), true
		}
	}
	return "", false
}

// DefaultMaxBoundSessions bounds a SessionRegistry made with no limit.
const DefaultMaxBoundSessions = 1 << 16

// SessionRegistry is the gateway's list of live control sessions, for
// BindSession under ReuseUser: who is logged in as whom, from where. A
// session joins when its client's address is known, says when it has logged
// in, and leaves when it ends. It is bounded: when full, a joining session
// is not listed, and then neither resumes a sibling's ticket nor lends its
// own (its own tickets still resume). Safe for concurrent use.
type SessionRegistry struct {
	mu      sync.Mutex
	max     int
	entries map[string]*registryEntry
}

type registryEntry struct {
	peer    SessionPeer
	settled chan struct{} // closed at login or when the session leaves
}

func (e *registryEntry) settle() {
	select {
	case <-e.settled:
	default:
		close(e.settled)
	}
}

// NewSessionRegistry returns a registry of at most max sessions (zero or
// less: DefaultMaxBoundSessions).
func NewSessionRegistry(max int) *SessionRegistry {
	if max <= 0 {
		max = DefaultMaxBoundSessions
	}
	return &SessionRegistry{max: max, entries: map[string]*registryEntry{}}
}

// Join lists session id from client address addr, not logged in. It reports
// false when the registry is full.
func (r *SessionRegistry) Join(id string, addr netip.Addr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[id]; ok {
		e.peer = SessionPeer{ID: id, Addr: addr}
		return true
	}
	if len(r.entries) >= r.max {
		return false
	}
	r.entries[id] = &registryEntry{peer: SessionPeer{ID: id, Addr: addr}, settled: make(chan struct{})}
	return true
}

// LoggedIn records that session id is logged in as user. A session that did
// not join stays unlisted.
func (r *SessionRegistry) LoggedIn(id, user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[id]; ok {
		e.peer.User, e.peer.LoggedIn = user, true
		e.settle()
	}
}

// Leave removes session id: its tickets no longer resume elsewhere.
func (r *SessionRegistry) Leave(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[id]; ok {
		e.settle()
		delete(r.entries, id)
	}
}

// Peer implements Peers.
func (r *SessionRegistry) Peer(id string) (SessionPeer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[id]; ok {
		return e.peer, true
	}
	return SessionPeer{}, false
}

// AwaitLogin implements Peers.
func (r *SessionRegistry) AwaitLogin(id string, wait time.Duration) (SessionPeer, bool) {
	r.mu.Lock()
	e, ok := r.entries[id]
	r.mu.Unlock()
	if !ok {
		return SessionPeer{}, false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-e.settled:
	case <-t.C:
	}
	return r.Peer(id)
}

// Len is the number of listed sessions.
func (r *SessionRegistry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}
