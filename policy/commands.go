package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// preLogin lists the commands a session may send before it is logged in.
// Everything else gets 530 and never reaches the backend.
var preLogin = map[string]bool{
	"AUTH": true, "PBSZ": true, "PROT": true, "CCC": true, "FEAT": true,
	"QUIT": true, "NOOP": true, "HOST": true, "USER": true, "PASS": true,
	"SYST": true, "OPTS": true, "HELP": true,
	// ACCT carries a one-time code after PASS got 332 (auth.mode gateway);
	// without a pending login the gateway answers it itself.
	"ACCT": true,
}

// AllowedBeforeLogin reports whether verb may be sent before login.
func AllowedBeforeLogin(verb string) bool { return preLogin[verb] }

// Protection is a data-channel protection level (RFC 4217 PROT).
type Protection byte

// The PROT levels of RFC 2228.
const (
	ProtClear        Protection = 'C'
	ProtSafe         Protection = 'S'
	ProtConfidential Protection = 'E'
	ProtPrivate      Protection = 'P'
)

// Errors returned by the data-channel decisions. The proxy maps them to replies.
var (
	ErrProtNotSupported = errors.New("policy: protection level not supported")     // 536
	ErrProtDenied       = errors.New("policy: clear data channel refused")         // 534
	ErrActiveDisabled   = errors.New("policy: active mode is disabled")            // 534
	ErrBounce           = errors.New("policy: active-mode target refused")         // 534 (RFC 2577)
	ErrClearData        = errors.New("policy: transfer needs a protected channel") // 521-like, we answer 534
)

// DataPolicy decides what the data channel may be.
type DataPolicy struct {
	RequireProtected bool // PROT P required before transfers; PROT C refused
	ActiveEnabled    bool // PORT/EPRT from clients allowed
}

// CheckProt decides a PROT request.
func (p DataPolicy) CheckProt(level Protection) error {
	switch level {
	case ProtPrivate:
		return nil
	case ProtClear:
		if p.RequireProtected {
			return ErrProtDenied
		}
		return nil
	}
	return ErrProtNotSupported
}

// CheckTransfer decides whether a transfer may start at this protection level.
func (p DataPolicy) CheckTransfer(level Protection) error {
	if p.RequireProtected && level != ProtPrivate {
		return ErrClearData
	}
	return nil
}

// CheckActiveTarget decides whether the gateway may connect to target for a
// client whose control connection comes from client: only when active mode
// is on, only to the client's own address and only to a port >= 1024 (no
// FTP bounce, RFC 2577).
func (p DataPolicy) CheckActiveTarget(client netip.Addr, target netip.AddrPort) error {
	if !p.ActiveEnabled {
		return ErrActiveDisabled
	}
	if target.Addr().Unmap() != client.Unmap() {
		return fmt.Errorf("%w: %s is not the client's address %s", ErrBounce, target.Addr(), client)
	}
	if target.Port() < 1024 {
		return fmt.Errorf("%w: port %d is below 1024", ErrBounce, target.Port())
	}
	return nil
}

// LoginPolicy decides who may log in and which SITE commands pass.
type LoginPolicy struct {
	// AllowAnonymous lets "anonymous" and "ftp" log in; off, they get 530
	// and never reach the backend.
	AllowAnonymous bool
	// AllowedSiteCommands are the SITE subcommands relayed (upper case);
	// every other SITE command is refused.
	AllowedSiteCommands []string
}

// ErrAnonymous refuses an anonymous login.
var ErrAnonymous = errors.New("policy: anonymous login refused")

// ErrSiteCommand refuses a SITE command.
var ErrSiteCommand = errors.New("policy: SITE command not allowed")

// CheckUser decides a USER argument.
func (p LoginPolicy) CheckUser(user string) error {
	if !p.AllowAnonymous && (strings.EqualFold(user, "anonymous") || strings.EqualFold(user, "ftp")) {
		return ErrAnonymous
	}
	return nil
}

// CheckSite decides a SITE command from its argument ("CHMOD 644 f").
func (p LoginPolicy) CheckSite(arg string) error {
	sub, _, _ := strings.Cut(strings.TrimSpace(arg), " ")
	for _, allowed := range p.AllowedSiteCommands {
		if strings.EqualFold(sub, allowed) {
			return nil
		}
	}
	return fmt.Errorf("%w: SITE %s", ErrSiteCommand, strings.ToUpper(sub))
}
