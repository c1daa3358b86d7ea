package proxy

import (
	"errors"
	"strings"

	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/upstream"
)

type handler func(s *session, cmd ftp.Command) error

// handlers answers what belongs to the edge. Every other command, once the
// session is logged in, is relayed to the backend as it is.
var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"AUTH": (*session).handleAUTH,
		"PBSZ": (*session).handlePBSZ,
		"PROT": (*session).handlePROT,
		"CCC":  (*session).handleCCC,
		"FEAT": (*session).handleFEAT,
		"QUIT": (*session).handleQUIT,
		"NOOP": (*session).handleNOOP,
		"HOST": (*session).handleHOST,
		"USER": (*session).handleUSER,
		"PASS": (*session).handlePASS,
		"ACCT": (*session).handleACCT,
		"SYST": (*session).handleSYST,
		"OPTS": (*session).handleOPTS,
		"HELP": (*session).handleHELP,
		"REIN": notImplemented("REIN is not supported through this gateway."),

		"PASV": (*session).handlePassive,
		"EPSV": (*session).handlePassive,
		"PORT": (*session).handleActive,
		"EPRT": (*session).handleActive,
		// Data-channel and security commands that would open a path around
		// the gateway: refused.
		"LPSV": notImplemented("Use EPSV."),
		"LPRT": notImplemented("Use EPRT."),
		"SPSV": notImplemented("Use EPSV."),
		"CPSV": notImplemented("Use EPSV."),
		"SSCN": notImplemented("SSCN is not supported."),
		"ADAT": notImplemented("ADAT is not supported."),
		"MIC":  notImplemented("MIC is not supported."),
		"CONF": notImplemented("CONF is not supported."),
		"ENC":  notImplemented("ENC is not supported."),

		"SITE": (*session).handleSITE,
		"ABOR": (*session).handleABOR,

		"RETR": (*session).handleTransfer,
		"STOR": (*session).handleTransfer,
		"STOU": (*session).handleTransfer,
		"APPE": (*session).handleTransfer,
		"LIST": (*session).handleTransfer,
		"NLST": (*session).handleTransfer,
		"MLSD": (*session).handleTransfer,
		"REST": (*session).handleREST,

		"HASH":    (*session).handleHASH,
		"XSHA256": (*session).handleXSHA256,
		"TYPE":    (*session).handleTYPE,
	}
}

func notImplemented(text string) handler {
	return func(s *session, _ ftp.Command) error { return s.reply(ftp.StatusNotImplemented, text) }
}

func (s *session) dispatch(cmd ftp.Command) error {
	if !s.loggedIn && !policy.AllowedBeforeLogin(cmd.Verb) {
		return s.reply(ftp.StatusNotLoggedIn, "Please login with USER and PASS.")
	}
	if s.loggedIn && s.vroot.pol != nil {
		return s.dispatchConfined(cmd)
	}
	if h, ok := handlers[cmd.Verb]; ok {
		return h(s, cmd)
	}
	return s.relay(cmd)
}

// handleAUTH upgrades the control connection (RFC 4217 section 4).
func (s *session) handleAUTH(cmd ftp.Command) error {
	switch strings.ToUpper(strings.TrimSpace(cmd.Arg)) {
	case "TLS", "TLS-C", "SSL", "TLS-P":
	default:
		return s.reply(ftp.StatusNotImplementedParameter, "Only AUTH TLS is supported.")
	}
	if s.tls != nil {
		return s.reply(ftp.StatusBadSequence, "TLS is already active.")
	}
	if s.r.Buffered() > 0 {
		// Anything sent after AUTH before the handshake would be read as if
		// it came over TLS (the STARTTLS injection of CVE-2011-0411).
		s.log.Warn().Msg("plaintext pipelined after AUTH TLS: closing")
		return s.errorf("%w", errPipelinedAuth)
	}
	if err := s.reply(ftp.StatusAuthOK, "AUTH TLS successful."); err != nil {
		return err
	}
	if err := s.handshake(); err != nil {
		return err
	}
	s.pbsz, s.prot = false, policy.ProtClear
	return nil
}

// handlePBSZ answers per RFC 4217 section 8: the buffer size is always 0.
func (s *session) handlePBSZ(cmd ftp.Command) error {
	if s.tls == nil {
		return s.reply(ftp.StatusBadSequence, "PBSZ needs AUTH TLS first.")
	}
	arg := strings.TrimSpace(cmd.Arg)
	if arg == "" || strings.Trim(arg, "0123456789") != "" {
		return s.reply(ftp.StatusSyntaxErrorParameters, "PBSZ needs a decimal number.")
	}
	s.pbsz = true
	return s.reply(ftp.StatusCommandOK, "PBSZ=0")
}

func (s *session) handlePROT(cmd ftp.Command) error {
	if s.tls == nil || !s.pbsz {
		return s.reply(ftp.StatusBadSequence, "PROT needs AUTH TLS and PBSZ first.")
	}
	arg := strings.ToUpper(strings.TrimSpace(cmd.Arg))
	if len(arg) != 1 {
		return s.reply(ftp.StatusNotImplementedParameter, "PROT takes one of C, S, E, P.")
	}
	level := policy.Protection(arg[0])
	switch err := s.env.data.CheckProt(level); {
	case errors.Is(err, policy.ErrProtDenied):
		s.log.Warn().Str("prot", arg).Msg("clear data channel refused by policy")
		return s.reply(ftp.StatusPolicyDenied, "PROT C refused: data connections must be protected (PROT P).")
	case err != nil:
		return s.reply(ftp.StatusProtLevelNotSupported, "Only PROT P and C are supported.")
	}
	s.prot = level
	return s.reply(ftp.StatusCommandOK, "Protection level set to "+arg+".")
}

func (s *session) handleCCC(ftp.Command) error {
	return s.reply(ftp.StatusPolicyDenied, "CCC refused: the control connection stays protected.")
}

func (s *session) handleQUIT(ftp.Command) error {
	if s.be != nil {
		s.be.quit()
	}
	_ = s.reply(ftp.StatusClosing, "Goodbye.")
	return errClientQuit
}

func (s *session) handleNOOP(cmd ftp.Command) error {
	if s.loggedIn {
		return s.relay(cmd) // keeps the backend session alive too
	}
	return s.reply(ftp.StatusCommandOK, "NOOP ok.")
}

// handleHOST accepts RFC 7151 HOST before USER; it is recorded and logged.
func (s *session) handleHOST(cmd ftp.Command) error {
	if s.userSent {
		return s.reply(ftp.StatusBadSequence, "HOST must come before USER.")
	}
	if strings.TrimSpace(cmd.Arg) == "" {
		return s.reply(ftp.StatusSyntaxErrorParameters, "HOST needs a host name.")
	}
	if err := upstream.CheckHost(cmd.Arg); err != nil {
		// The name is not kept: it would be in every line of the session.
		s.log.Warn().Err(err).Int("length", len(cmd.Arg)).Msg("HOST refused: no host name")
		return s.reply(ftp.StatusSyntaxErrorParameters, "HOST needs a host name or an address (RFC 7151).")
	}
	s.host = strings.TrimSpace(cmd.Arg)
	s.log = s.log.With().Str("host", s.host).Logger()
	s.infoMu.Lock()
	s.evHost = s.host
	s.infoMu.Unlock()
	return s.reply(ftp.StatusReady, "HOST accepted.")
}

func (s *session) handleSYST(cmd ftp.Command) error {
	if s.loggedIn {
		return s.relay(cmd)
	}
	return s.reply(ftp.StatusSystemType, "UNIX Type: L8")
}

// handleOPTS relays after login; before, only OPTS UTF8 ON is taken, and
// replayed to the backend after login.
func (s *session) handleOPTS(cmd ftp.Command) error {
	if s.loggedIn && isOptsHash(cmd.Arg) {
		return s.optsHash(cmd.Arg) // the gateway's HASH (hashcmd.go)
	}
	if s.loggedIn {
		return s.relay(cmd)
	}
	if strings.EqualFold(strings.Join(strings.Fields(cmd.Arg), " "), "UTF8 ON") {
		s.optsUTF8 = true
		return s.reply(ftp.StatusCommandOK, "UTF8 mode requested.")
	}
	return s.reply(ftp.StatusNotLoggedIn, "Please login with USER and PASS.")
}

func (s *session) handleHELP(cmd ftp.Command) error {
	if s.loggedIn {
		return s.relay(cmd)
	}
	return s.send(ftp.Reply{Code: 214, Lines: []string{
		"The following commands are recognized before login:",
		" AUTH PBSZ PROT CCC FEAT HOST USER PASS SYST OPTS HELP NOOP QUIT",
		"Help OK.",
	}})
}

// handleABOR answers an ABOR with no transfer running (ABOR during a
// transfer is handled by the transfer): a prepared data connection is
// dropped, and the backend, which has nothing to abort either, is left out
// (servers answer an idle ABOR with one reply or two, ProFTPD even 426-226).
func (s *session) handleABOR(ftp.Command) error {
	s.closePending()
	return s.reply(ftp.StatusClosingDataConnection, "ABOR command successful; no transfer in progress.")
}

// handleSITE relays only the SITE commands the policy lists.
func (s *session) handleSITE(cmd ftp.Command) error {
	if err := s.env.cfg.Login.CheckSite(cmd.Arg); err != nil {
		s.log.Warn().Err(err).Msg("SITE command refused by policy")
		return s.reply(ftp.StatusNotImplementedParameter, "This SITE command is not allowed.")
	}
	return s.relay(cmd)
}

// afterLogin replays what the client asked for before the backend existed.
func (s *session) afterLogin() {
	s.bindLogin()
	if s.optsUTF8 {
		if _, err := s.ask(ftp.Command{Verb: "OPTS", Arg: "UTF8 ON"}); err != nil {
			s.log.Warn().Err(err).Msg("replaying OPTS UTF8 ON to the backend")
		}
	}
}

// ownFeatures are what the gateway itself implements.
var ownFeatures = []string{"AUTH TLS", "PBSZ", "PROT", "EPSV"}

// relayable are the backend features a client may use through the gateway.
var relayable = map[string]bool{
	"MDTM": true, "SIZE": true, "REST": true, "MLST": true, "UTF8": true,
	"TVFS": true, "LANG": true, "MFMT": true, "MFCT": true, "MFF": true,
	"CLNT": true, "MODE": true, "XCRC": true, "XMD5": true, "XSHA1": true,
	"XSHA256": true, "HASH": true, "RANG": true, "AVBL": true, "SITE": true,
}

func (s *session) handleFEAT(cmd ftp.Command) error {
	own := ownFeatures
	if s.env.data.ActiveEnabled {
		own = append(own[:len(own):len(own)], "EPRT")
	}
	if !s.loggedIn {
		return s.send(ftp.FeatureReply(append(append(own, "HOST"), s.hashFeatures(nil)...)))
	}
	if s.feat != nil {
		return s.send(*s.feat)
	}
	beFeats, err := s.backendFeatures()
	if err != nil {
		return s.backendFailed(err)
	}
	feats := append([]string(nil), own...)
	for _, f := range beFeats {
		if name := ftp.FeatureName(f); relayable[name] && name != "HASH" && name != "XSHA256" {
			feats = append(feats, f)
		}
	}
	feats = append(feats, s.hashFeatures(beFeats)...) // the gateway's own (hashcmd.go)
	merged := ftp.FeatureReply(feats)
	s.feat = &merged
	return s.send(merged)
}
