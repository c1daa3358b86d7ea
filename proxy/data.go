package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// Data-connection failures, mapped to 425 or 431.
var (
	errDataAccept = errors.New("client data connection not established")
	errDataTLS    = errors.New("data connection TLS handshake failed")
	errNotResumed = fmt.Errorf("%w: the data connection did not resume the control connection's TLS session", errDataTLS)
)

// replyError is a backend reply that refuses what the gateway asked.
type replyError struct{ rep ftp.Reply }

func (e *replyError) Error() string {
	return fmt.Sprintf("backend replied %d %s", e.rep.Code, said(e.rep))
}

// dataSetup is a data connection being prepared: the backend side is
// connected at PASV/EPSV/PORT/EPRT time, the client side is accepted on a
// leased port (passive) or dialled when the transfer starts (active).
type dataSetup struct {
	ctx     context.Context
	cancel  context.CancelFunc
	backend net.Conn       // TCP to the backend's passive port; nil once handed to relay.DrainAndClose
	lease   *nat.Lease     // passive: the client's port
	active  netip.AddrPort // active: where to connect the client
	protect bool           // TLS on the client's data connection (PROT P)
	client  chan result[net.Conn]
	wg      sync.WaitGroup

	mu      sync.Mutex
	refusal error // why the last data connection was refused (passive)
}

// noClient is why the client's data connection is not there: the last
// refusal's reason (431 for a TLS one) or errDataAccept.
func (d *dataSetup) noClient() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refusal != nil {
		return d.refusal
	}
	return errDataAccept
}

// closePending drops a prepared data connection that was not used.
func (s *session) closePending() {
	if s.pending != nil {
		s.pending.close()
		s.pending = nil
	}
}

// close releases everything the setup holds and waits for its goroutines.
func (d *dataSetup) close() {
	d.cancel()
	if d.lease != nil {
		d.lease.Release()
	}
	if d.backend != nil {
		_ = d.backend.Close()
	}
	d.wg.Wait()
	select {
	case r := <-d.client:
		if r.v != nil {
			_ = r.v.Close()
		}
	default:
	}
}

// ask sends cmd to the backend and returns its final reply; nothing of it
// reaches the client.
func (s *session) ask(cmd ftp.Command) (ftp.Reply, error) {
	return s.be.Do(s.ctx, cmd, nil)
}

// backendPassive puts the backend in passive mode (EPSV, falling back to
// PASV) and returns where to connect: always the backend's control host,
// whatever address a 227 names (behind NAT it is often wrong).
func (s *session) backendPassive() (netip.AddrPort, error) {
	if !s.be.noEPSV {
		rep, err := s.askPassive("EPSV")
		if err != nil {
			return netip.AddrPort{}, err
		}
		if rep.Code == ftp.StatusExtendedPassiveMode {
			port, err := ftp.ParseEPSV(rep.Text())
			if err != nil {
				s.log.Error().Err(err).Str("reply", said(rep)).Msg("unparsable EPSV reply from backend")
				return netip.AddrPort{}, &replyError{rep}
			}
			return netip.AddrPortFrom(s.be.host, port), nil
		}
		if rep.Class() != 5 {
			return netip.AddrPort{}, &replyError{rep}
		}
		s.be.noEPSV = true
		s.log.Debug().Int(fieldCode, rep.Code).Msg("backend refused EPSV, using PASV")
	}
	rep, err := s.askPassive("PASV")
	if err != nil {
		return netip.AddrPort{}, err
	}
	if rep.Code != ftp.StatusPassiveMode {
		return netip.AddrPort{}, &replyError{rep}
	}
	ap, err := ftp.ParsePASV(rep.Text())
	if err != nil {
		s.log.Error().Err(err).Str("reply", said(rep)).Msg("unparsable PASV reply from backend")
		return netip.AddrPort{}, &replyError{rep}
	}
	return netip.AddrPortFrom(s.be.host, ap.Port()), nil
}

// passiveTries bounds how often the backend is asked for passive mode
// when it answers with a transient refusal (4xx, which RFC 959 says may be
// requested again). ProFTPD answers 425 when two of its sessions pick the
// same passive port at once (each binds it, with SO_REUSEADDR, and the
// second listen fails), as its sessions under rclone's parallel transfers
// do; the next try picks another port.
const passiveTries = 3

// askPassive sends verb (EPSV or PASV) to the backend, again while it
// answers with a transient refusal, at most passiveTries times in all.
func (s *session) askPassive(verb string) (ftp.Reply, error) {
	for try := 1; ; try++ {
		rep, err := s.ask(ftp.Command{Verb: verb})
		if err != nil || rep.Class() != 4 || rep.Code == ftp.StatusNotAvailable || try == passiveTries {
			return rep, err
		}
		s.log.Warn().Int(fieldCode, rep.Code).Str("reply", said(rep)).Int("try", try).
			Msgf("backend refused %s for now: asking again", verb)
	}
}

// prepareData opens the backend side of a data connection.
func (s *session) prepareData() (*dataSetup, error) {
	addr, err := s.backendPassive()
	if err != nil {
		return nil, err
	}
	sameHost := s.be.host.IsLoopback() || s.be.host == s.be.local
	if err := s.be.data.Check(addr, sameHost); err != nil {
		s.log.Error().Err(err).Uint16(fieldPort, addr.Port()).Str(fieldRemote, addr.String()).
			Msg("the backend named a data port the gateway does not connect to")
		return nil, s.errorf("%w", err)
	}
	dctx, dcancel := context.WithTimeout(s.ctx, s.env.cfg.Timeouts.connect())
	var conn net.Conn
	if dd, ok := s.be.dialer.(DataDialer); ok {
		conn, err = dd.DialData(dctx, addr.String(), s.be.raw)
	} else {
		conn, err = s.be.dialer.DialBackend(dctx, addr.String(), s.be.local)
	}
	dcancel()
	if err != nil {
		s.log.Error().Err(err).Str(fieldRemote, addr.String()).Msg("backend data connection failed")
		return nil, &replyError{ftp.NewReply(ftp.StatusCannotOpenDataConnection, "backend data connection failed")}
	}
	ctx, cancel := context.WithCancel(s.ctx)
	return &dataSetup{
		ctx:     ctx,
		cancel:  cancel,
		backend: conn,
		protect: s.prot == policy.ProtPrivate,
		client:  make(chan result[net.Conn], 1),
	}, nil
}

// dataFailed answers a failed data setup: a refusal from the backend, or
// of the data port it named, is a 425 for the client; a lost backend ends
// the session.
func (s *session) dataFailed(err error) error {
	if errors.Is(err, policy.ErrBackendDataPort) { // logged where it was decided
		return s.reply(ftp.StatusCannotOpenDataConnection, "Cannot open data connection.")
	}
	var re *replyError
	if errors.As(err, &re) {
		s.log.Warn().Err(err).Msg("data connection setup refused")
		return s.reply(ftp.StatusCannotOpenDataConnection, "Cannot open data connection.")
	}
	return s.backendFailed(err)
}

func (s *session) family() int {
	if s.localIP.Is4() {
		return 1
	}
	return 2
}

// handlePassive answers PASV and EPSV (RFC 959, RFC 2428 section 3).
func (s *session) handlePassive(cmd ftp.Command) error {
	extended := cmd.Verb == "EPSV"
	if extended {
		all, proto, err := ftp.ParseEPSVArg(cmd.Arg)
		switch {
		case errors.Is(err, ftp.ErrUnsupportedProtocol) || err == nil && proto != 0 && proto != s.family():
			return s.reply(ftp.StatusNetworkProtocolNotSupported, fmt.Sprintf("Network protocol not supported, use (%d)", s.family()))
		case err != nil:
			return s.reply(ftp.StatusSyntaxErrorParameters, "EPSV takes no argument, 1, 2 or ALL.")
		case all:
			s.epsvAll = true
			return s.reply(ftp.StatusCommandOK, "EPSV ALL ok.")
		}
	} else {
		if s.epsvAll {
			return s.reply(ftp.StatusBadSequence, "PASV is not allowed after EPSV ALL.")
		}
		if !s.localIP.Is4() {
			// A 227 cannot carry an IPv6 address (RFC 2428).
			return s.reply(ftp.StatusNetworkProtocolNotSupported, "PASV is IPv4 only: use EPSV on IPv6.")
		}
	}
	s.closePending()
	d, err := s.prepareData()
	if err != nil {
		return s.dataFailed(err)
	}
	counted := s.clientIP // the pool caps the ports one address holds (limits.max_passive_per_ip)
	if s.env.admission.Exempt(s.clientIP) {
		counted = netip.Addr{}
	}
	lease, err := s.env.pool.Listen(d.ctx, s.localIP, counted)
	if err != nil {
		d.close()
		if errors.Is(err, nat.ErrClientLimit) || errors.Is(err, nat.ErrNoPortAvailable) {
			s.emit(events.PassiveExhausted{Session: s.ev(), PerIP: errors.Is(err, nat.ErrClientLimit)})
		}
		if errors.Is(err, nat.ErrClientLimit) {
			s.log.Warn().Err(err).Int("max_passive_per_ip", s.env.cfg.Limits.MaxPassivePerIP).
				Msg("passive port refused: this address holds its share of passive ports")
			return s.reply(ftp.StatusCannotOpenDataConnection, "Too many passive ports open from your address (limits.max_passive_per_ip), try again later.")
		}
		s.log.Warn().Err(err).Msg("no passive port")
		return s.reply(ftp.StatusCannotOpenDataConnection, "No passive port available, try again later.")
	}
	d.lease = lease
	s.pending = d
	d.wg.Add(1)
	go func() { defer d.wg.Done(); s.acceptData(d) }()

	port := lease.Port()
	if extended {
		return s.reply(ftp.StatusExtendedPassiveMode, ftp.FormatEPSV(port))
	}
	text, err := ftp.FormatPASV(netip.AddrPortFrom(s.env.cfg.Passive.Advertise(s.localIP), port))
	if err != nil {
		s.closePending()
		return s.reply(ftp.StatusNetworkProtocolNotSupported, "PASV is IPv4 only: use EPSV.")
	}
	return s.reply(ftp.StatusPassiveMode, text)
}

// handleActive answers PORT and EPRT when active mode is on: the gateway
// still uses passive mode towards the backend and connects to the client
// itself, only to the control connection's address and ports >= 1024.
func (s *session) handleActive(cmd ftp.Command) error {
	if s.epsvAll {
		return s.reply(ftp.StatusBadSequence, cmd.Verb+" is not allowed after EPSV ALL.")
	}
	var target netip.AddrPort
	var err error
	if cmd.Verb == "PORT" {
		target, err = ftp.ParsePORT(cmd.Arg)
	} else {
		target, err = ftp.ParseEPRT(cmd.Arg)
	}
	switch {
	case errors.Is(err, ftp.ErrUnsupportedProtocol):
		return s.reply(ftp.StatusNetworkProtocolNotSupported, "Network protocol not supported, use (1,2)")
	case err != nil:
		return s.reply(ftp.StatusSyntaxErrorParameters, "Bad "+cmd.Verb+" argument.")
	}
	if err := s.env.data.CheckActiveTarget(s.clientIP, target); err != nil {
		s.log.Warn().Err(err).Str(fieldRemote, target.String()).Msg("active mode refused")
		if errors.Is(err, policy.ErrActiveDisabled) {
			return s.reply(ftp.StatusPolicyDenied, "Active mode is disabled: use PASV or EPSV.")
		}
		return s.reply(ftp.StatusPolicyDenied, "Refused: active connections only to your own address and ports >= 1024.")
	}
	s.closePending()
	d, err := s.prepareData()
	if err != nil {
		return s.dataFailed(err)
	}
	d.active = target
	s.pending = d
	return s.reply(ftp.StatusCommandOK, cmd.Verb+" command successful.")
}
