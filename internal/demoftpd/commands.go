package demoftpd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	ftpserver "goftp.io/server/v2"
)

// Reply codes this package sends (RFC 959 section 4.2 unless noted).
const (
	replyOpening          = 150 // file status okay; about to open data connection
	replyOK               = 200
	replyStatus           = 211 // system status, or FEAT (RFC 2389)
	replyFileStatus       = 213 // file status: SIZE, MDTM (RFC 3659), STAT path
	replyTransferDone     = 226
	replyPassive          = 227
	replyExtPassive       = 229 // RFC 2428
	replyAuthOK           = 234 // AUTH accepted (RFC 2228 section 4)
	replyFileActionOK     = 250
	replyPathCreated      = 257
	replyPending          = 350
	replyCantOpenData     = 425
	replyTransferAborted  = 426
	replyLocalError       = 451
	replySyntax           = 501
	replyNotImplemented   = 502
	replyBadSequence      = 503
	replyParamNotImpl     = 504
	replyNeedProtection   = 521 // data needs PROT P (RFC 4217 section 9)
	replyBadProtocol      = 522 // RFC 2428
	replyDataTLSFailed    = 522 // vsftpd's FTP_DATATLSBAD
	replyNotLoggedIn      = 530
	replyProtNotSupported = 536 // RFC 2228 section 4
	replyUnavailable      = 550
	replyInvalidRest      = 554 // RFC 3659 section 5.5
)

// baseFeatures is our FEAT list (RFC 2389) without TLS: only what this server
// really does.
var baseFeatures = []string{
	"EPSV",
	"MDTM",
	"MLST type*;size*;modify*;",
	"PASV",
	"REST STREAM",
	"SIZE",
	"UTF8",
}

// features returns the FEAT list, sorted, with the RFC 4217 commands when
// TLS is on (AUTH TLS only in explicit mode, as vsftpd).
func (t tlsSettings) features() []string {
	f := slices.Clone(baseFeatures)
	switch t.mode {
	case tlsExplicit:
		f = append(f, "AUTH TLS", "PBSZ", "PROT")
	case tlsImplicit:
		f = append(f, "PBSZ", "PROT")
	}
	slices.Sort(f)
	return f
}

// command is one of our own FTP commands. goftp checks RequireAuth before
// Execute; we check the parameter ourselves to answer 501 (goftp says 553).
type command struct {
	needParam bool
	noAuth    bool
	// keepsState marks REST and RNFR, whose state must survive until the next
	// command; every other command clears it.
	keepsState bool
	run        func(c *ctrlConn, sess *ftpserver.Session, param string)
}

func (cmd command) IsExtend() bool     { return false } // FEAT is ours
func (cmd command) RequireParam() bool { return false }
func (cmd command) RequireAuth() bool  { return !cmd.noAuth }

func (cmd command) Execute(sess *ftpserver.Session, param string) {
	c := connOf(sess)
	if c == nil {
		sess.WriteMessage(replyLocalError, "Internal error: unknown session")
		return
	}
	if !cmd.keepsState {
		defer c.clearState()
	}
	if cmd.needParam && strings.TrimSpace(param) == "" {
		sess.WriteMessage(replySyntax, "Syntax error: argument required")
		return
	}
	cmd.run(c, sess, param)
}

// goftpCommand is one of goftp's commands, run unchanged except that it ends
// a pending REST or RNFR like any command should.
type goftpCommand struct{ ftpserver.Command }

func (g goftpCommand) Execute(sess *ftpserver.Session, param string) {
	g.Command.Execute(sess, param)
	if c := connOf(sess); c != nil {
		c.clearState()
	}
}

func (c *ctrlConn) clearState() {
	c.rest = 0
	c.renameFrom = ""
}

// commands returns goftp's command table with ours on top. goftp's stay for
// USER, PASS, CWD/XCWD, CDUP/XCUP, PWD/XPWD, DELE, QUIT, NOOP, SYST, MODE,
// STRU, ALLO, OPTS, CLNT and the security-extension commands (which answer
// 550); with TLS, AUTH, PBSZ and PROT are ours (tls.go), and USER and PASS
// are wrapped when RequireTLS.
func (s *Server) commands() map[string]ftpserver.Command {
	cmds := make(map[string]ftpserver.Command)
	goftp := ftpserver.DefaultCommands()
	for name, cmd := range goftp {
		cmds[name] = goftpCommand{cmd}
	}
	active := command{run: cmdActive}
	mkd := command{needParam: true, run: cmdMkd}
	rmd := command{needParam: true, run: cmdRmd}
	own := map[string]command{
		"ABOR": {noAuth: true, run: cmdAbor},
		"APPE": {needParam: true, run: cmdAppe},
		"EPRT": active,
		"EPSV": {run: cmdEpsv},
		"FEAT": {noAuth: true, run: cmdFeat},
		"LIST": {run: cmdList},
		"LPRT": active,
		"MDTM": {needParam: true, run: cmdMdtm},
		"MKD":  mkd,
		"MLSD": {run: cmdMlsd},
		"MLST": {run: cmdMlst},
		"NLST": {run: cmdNlst},
		"PASV": {run: cmdPasv},
		"PORT": active,
		"REST": {needParam: true, keepsState: true, run: cmdRest},
		"RETR": {needParam: true, run: cmdRetr},
		"RMD":  rmd,
		"RNFR": {needParam: true, keepsState: true, run: cmdRnfr},
		"RNTO": {needParam: true, run: cmdRnto},
		"SIZE": {needParam: true, run: cmdSize},
		"STAT": {run: cmdStat},
		"STOR": {needParam: true, run: cmdStor},
		"STOU": {run: cmdStou},
		"TYPE": {needParam: true, run: cmdType},
		"XMKD": mkd,
		"XRMD": rmd,
	}
	for name, cmd := range own {
		cmds[name] = cmd
	}
	for name, cmd := range s.tlsCommands(goftp) {
		cmds[name] = cmd
	}
	return cmds
}

// replyLines writes a multi-line reply with CRLF line ends (goftp's own use a
// bare LF inside). goftp flushes after every reply, so writing to the
// connection directly keeps the order.
func (c *ctrlConn) replyLines(code int, first string, lines []string, last string) {
	var b strings.Builder
	fmt.Fprintf(&b, "%d-%s\r\n", code, first)
	for _, l := range lines {
		b.WriteString(" ")
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "%d %s\r\n", code, last)
	c.log.Debug().Int(fieldCode, code).Str(fieldReply, first).Msg("reply")
	_, _ = io.WriteString(c, b.String())
}

func cmdAbor(c *ctrlConn, sess *ftpserver.Session, _ string) {
	// A running transfer was already cut by readLoop and has answered 426.
	c.dropPassive()
	sess.WriteMessage(replyTransferDone, "ABOR command successful")
}

func cmdFeat(c *ctrlConn, _ *ftpserver.Session, _ string) {
	c.replyLines(replyStatus, "Features:", c.s.tls.features(), "End")
}

func cmdActive(c *ctrlConn, sess *ftpserver.Session, _ string) {
	c.dropPassive()
	sess.WriteMessage(replyNotImplemented, "Active mode is not supported; use PASV or EPSV")
}

func cmdPasv(c *ctrlConn, sess *ftpserver.Session, _ string) {
	ip := localIP(c.Conn).To4()
	if ip == nil {
		sess.WriteMessage(replyCantOpenData, "PASV needs IPv4; use EPSV")
		return
	}
	port, ok := c.listenPassive(sess, ip)
	if !ok {
		return
	}
	sess.WriteMessage(replyPassive, fmt.Sprintf("Entering Passive Mode (%d,%d,%d,%d,%d,%d).",
		ip[0], ip[1], ip[2], ip[3], port>>8, port&0xff))
}

func cmdEpsv(c *ctrlConn, sess *ftpserver.Session, param string) {
	ip := localIP(c.Conn)
	proto := "2"
	if ip.To4() != nil {
		proto = "1"
	}
	switch p := strings.ToUpper(strings.TrimSpace(param)); p {
	case "ALL":
		sess.WriteMessage(replyOK, "EPSV ALL ok")
		return
	case "", proto:
	default:
		sess.WriteMessage(replyBadProtocol, "Network protocol not supported, use ("+proto+")")
		return
	}
	port, ok := c.listenPassive(sess, ip)
	if !ok {
		return
	}
	sess.WriteMessage(replyExtPassive, fmt.Sprintf("Entering Extended Passive Mode (|||%d|)", port))
}

// listenPassive opens the listener for the next transfer on the control
// connection's local address and answers 425 itself on failure.
func (c *ctrlConn) listenPassive(sess *ftpserver.Session, ip net.IP) (port int, ok bool) {
	c.dropPassive() // frees its port for a range of one
	ln, err := c.s.ports.listen(ip)
	if err != nil {
		c.log.Debug().Err(err).Msg("passive listen failed")
		sess.WriteMessage(replyCantOpenData, "Can't open passive connection")
		return 0, false
	}
	port = ln.Addr().(*net.TCPAddr).Port
	if err := c.setPassive(ln); err != nil {
		return 0, false
	}
	return port, true
}

func cmdRest(c *ctrlConn, sess *ftpserver.Session, param string) {
	n, err := strconv.ParseInt(strings.TrimSpace(param), 10, 64)
	if err != nil || n < 0 {
		sess.WriteMessage(replySyntax, "REST needs a non-negative byte offset")
		return
	}
	c.rest = n
	sess.WriteMessage(replyPending, fmt.Sprintf("Restarting at %d. Send STOR or RETR to initiate transfer", n))
}

func cmdType(c *ctrlConn, sess *ftpserver.Session, param string) {
	switch strings.ToUpper(strings.Join(strings.Fields(param), " ")) {
	case "A", "A N":
		c.ascii = true
		sess.WriteMessage(replyOK, "Type set to A")
	case "I", "L 8":
		c.ascii = false
		sess.WriteMessage(replyOK, "Type set to I")
	default:
		sess.WriteMessage(replyParamNotImpl, "Type not supported")
	}
}

func (c *ctrlConn) modeName() string {
	if c.ascii {
		return "ASCII"
	}
	return "BINARY"
}

func cmdRetr(c *ctrlConn, sess *ftpserver.Session, param string) {
	if !c.dataTransferChecks(sess) {
		return
	}
	vpath := sess.BuildPath(param)
	f, err := os.Open(c.s.realPath(vpath))
	if err != nil {
		c.failBeforeTransfer(sess, replyUnavailable, vpath+": file not available")
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		c.failBeforeTransfer(sess, replyUnavailable, vpath+": not a plain file")
		return
	}
	if c.rest > fi.Size() {
		c.failBeforeTransfer(sess, replyInvalidRest, fmt.Sprintf("REST offset %d is beyond the file's %d bytes", c.rest, fi.Size()))
		return
	}
	if _, err := f.Seek(c.rest, io.SeekStart); err != nil {
		c.failBeforeTransfer(sess, replyLocalError, "Seek failed")
		return
	}
	opening := fmt.Sprintf("Opening %s mode data connection for %s (%d bytes)", c.modeName(), vpath, fi.Size()-c.rest)
	c.transfer(sess, "RETR", vpath, opening, func(conn net.Conn) (int64, error) {
		return io.Copy(conn, f)
	})
}

func cmdStor(c *ctrlConn, sess *ftpserver.Session, param string) {
	if !c.dataTransferChecks(sess) {
		return
	}
	vpath := sess.BuildPath(param)
	flags := os.O_WRONLY | os.O_CREATE
	if c.rest == 0 {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(c.s.realPath(vpath), flags, 0o644)
	if err != nil {
		c.failBeforeTransfer(sess, replyUnavailable, vpath+": can't open file for writing")
		return
	}
	defer f.Close()
	if c.rest > 0 {
		// Write at the offset: keep the first c.rest bytes, replace the rest.
		fi, err := f.Stat()
		if err != nil || c.rest > fi.Size() {
			c.failBeforeTransfer(sess, replyInvalidRest, fmt.Sprintf("REST offset %d is beyond the file's size", c.rest))
			return
		}
		if err := f.Truncate(c.rest); err != nil {
			c.failBeforeTransfer(sess, replyLocalError, "Truncate failed")
			return
		}
		if _, err := f.Seek(c.rest, io.SeekStart); err != nil {
			c.failBeforeTransfer(sess, replyLocalError, "Seek failed")
			return
		}
	}
	c.upload(sess, "STOR", vpath, f, "Opening "+c.modeName()+" mode data connection for "+vpath)
}

func cmdAppe(c *ctrlConn, sess *ftpserver.Session, param string) {
	if !c.dataTransferChecks(sess) {
		return
	}
	vpath := sess.BuildPath(param)
	f, err := os.OpenFile(c.s.realPath(vpath), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		c.failBeforeTransfer(sess, replyUnavailable, vpath+": can't open file for appending")
		return
	}
	defer f.Close()
	c.upload(sess, "APPE", vpath, f, "Opening "+c.modeName()+" mode data connection for "+vpath)
}

// cmdStou stores under a new unique name (RFC 1123 section 4.1.2.9): the
// argument or "stou" in the working directory, then name.1, name.2, ...
func cmdStou(c *ctrlConn, sess *ftpserver.Session, param string) {
	if !c.dataTransferChecks(sess) {
		return
	}
	base := sess.BuildPath(param)
	if strings.TrimSpace(param) == "" {
		base = path.Join(sess.BuildPath(""), "stou")
	}
	var (
		f     *os.File
		err   error
		vpath string
	)
	for i := range 100 {
		vpath = base
		if i > 0 {
			vpath = base + "." + strconv.Itoa(i)
		}
		f, err = os.OpenFile(c.s.realPath(vpath), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		c.failBeforeTransfer(sess, replyUnavailable, "Can't create a unique file")
		return
	}
	defer f.Close()
	c.upload(sess, "STOU", vpath, f, "FILE: "+vpath)
}

// upload copies the data connection into f.
func (c *ctrlConn) upload(sess *ftpserver.Session, verb, vpath string, f *os.File, opening string) {
	c.transfer(sess, verb, vpath, opening, func(conn net.Conn) (int64, error) {
		n, err := io.Copy(f, conn)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		return n, err
	})
}

// dataTransferChecks answers 425 unless PASV or EPSV came first, which is
// checked before anything else, then 521 when RequireTLS and no PROT P (as
// vsftpd's data_transfer_checks_ok).
func (c *ctrlConn) dataTransferChecks(sess *ftpserver.Session) bool {
	c.mu.Lock()
	ok := c.pasv != nil
	c.mu.Unlock()
	if !ok {
		sess.WriteMessage(replyCantOpenData, "Use PASV or EPSV first")
		return false
	}
	return c.needProtection(sess)
}

// failBeforeTransfer answers a transfer command that failed before it touched
// the data connection; the passive listener is discarded with it.
func (c *ctrlConn) failBeforeTransfer(sess *ftpserver.Session, code int, msg string) {
	c.dropPassive()
	sess.WriteMessage(code, msg)
}

// transfer accepts the data connection, answers 150, runs the data TLS
// handshake with PROT P (after the 150, as vsftpd: clients such as
// jlaffaye/ftp start it only when they read or write), runs copy, closes the
// data connection and only then gives the final reply: 226, or 426 when the
// data connection failed or ABOR cut it, or 451 for a local file error, or
// 522 when the TLS handshake failed or did not resume the session.
func (c *ctrlConn) transfer(sess *ftpserver.Session, verb, vpath, opening string, copy func(net.Conn) (int64, error)) {
	t, conn, err := c.openData()
	switch {
	case errors.Is(err, errNoPassive):
		sess.WriteMessage(replyCantOpenData, "Use PASV or EPSV first")
		return
	case errors.Is(err, errAborted):
		sess.WriteMessage(replyTransferAborted, "Connection closed; transfer aborted")
		return
	case err != nil:
		c.log.Debug().Err(err).Str(fieldCommand, verb).Msg("no data connection")
		sess.WriteMessage(replyCantOpenData, "Can't open data connection")
		return
	}
	sess.WriteMessage(replyOpening, opening)
	data, err := c.protectData(conn)
	if err != nil {
		aborted := c.closeData(t)
		c.log.Debug().Err(err).Str(fieldCommand, verb).Bool(fieldAborted, aborted).Msg("data connection refused")
		switch {
		case aborted:
			sess.WriteMessage(replyTransferAborted, "Connection closed; transfer aborted")
		case errors.Is(err, errNoReuse):
			sess.WriteMessage(replyDataTLSFailed, msgReuseRequired)
		default:
			sess.WriteMessage(replyDataTLSFailed, msgDataTLSFailed)
		}
		return
	}
	t.data = data
	n, err := copy(data)
	aborted := c.closeData(t)
	c.log.Debug().Str(fieldCommand, verb).Str(fieldPath, vpath).Int64(fieldBytes, n).
		Dur(fieldDuration, time.Since(t.start)).Bool(fieldAborted, aborted).Err(err).Msg("transfer")
	var netErr *net.OpError
	switch {
	case aborted:
		sess.WriteMessage(replyTransferAborted, "Connection closed; transfer aborted")
	case errors.As(err, &netErr), errors.Is(err, errDataConn):
		sess.WriteMessage(replyTransferAborted, "Connection closed; transfer aborted: data connection failed")
	case err != nil:
		sess.WriteMessage(replyLocalError, "Transfer aborted: local error in processing")
	default:
		sess.WriteMessage(replyTransferDone, fmt.Sprintf("Transfer complete, %d bytes", n))
	}
}

func cmdList(c *ctrlConn, sess *ftpserver.Session, param string) {
	c.sendListing(sess, "LIST", param, formatLs)
}

func cmdNlst(c *ctrlConn, sess *ftpserver.Session, param string) {
	c.sendListing(sess, "NLST", param, formatNames)
}

func cmdMlsd(c *ctrlConn, sess *ftpserver.Session, param string) {
	c.sendListing(sess, "MLSD", param, formatMlsd)
}

func (c *ctrlConn) sendListing(sess *ftpserver.Session, verb, param string, format listFormat) {
	if !c.dataTransferChecks(sess) {
		return
	}
	vpath := sess.BuildPath(stripListFlags(param))
	data, err := c.s.listing(vpath, format, time.Now())
	if err != nil {
		c.failBeforeTransfer(sess, replyUnavailable, vpath+": "+describe(err))
		return
	}
	c.transfer(sess, verb, vpath, "Opening ASCII mode data connection for file list", func(conn net.Conn) (int64, error) {
		n, err := conn.Write(data)
		return int64(n), err
	})
}

func cmdMlst(c *ctrlConn, sess *ftpserver.Session, param string) {
	vpath := sess.BuildPath(param)
	fi, err := os.Stat(c.s.realPath(vpath))
	if err != nil {
		sess.WriteMessage(replyUnavailable, vpath+": "+describe(err))
		return
	}
	c.replyLines(replyFileActionOK, "Listing "+vpath, []string{mlsxFacts(fi) + " " + vpath}, "End")
}

func cmdStat(c *ctrlConn, sess *ftpserver.Session, param string) {
	if strings.TrimSpace(param) == "" {
		c.replyLines(replyStatus, serverName+" status:", []string{
			"Connected to " + c.LocalAddr().String(),
			"Logged in as " + sess.LoginUser(),
			"TYPE: " + c.modeName() + ", STRUcture: File, MODE: Stream",
			"No data connection",
		}, "End of status")
		return
	}
	vpath := sess.BuildPath(stripListFlags(param))
	data, err := c.s.listing(vpath, formatLs, time.Now())
	if err != nil {
		sess.WriteMessage(replyUnavailable, vpath+": "+describe(err))
		return
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\r\n"), "\r\n")
	if len(data) == 0 {
		lines = nil
	}
	c.replyLines(replyFileStatus, "Status of "+vpath+":", lines, "End of status")
}

func cmdSize(c *ctrlConn, sess *ftpserver.Session, param string) {
	vpath := sess.BuildPath(param)
	fi, err := os.Stat(c.s.realPath(vpath))
	if err != nil || !fi.Mode().IsRegular() {
		sess.WriteMessage(replyUnavailable, vpath+": not a plain file")
		return
	}
	sess.WriteMessage(replyFileStatus, strconv.FormatInt(fi.Size(), 10))
}

func cmdMdtm(c *ctrlConn, sess *ftpserver.Session, param string) {
	vpath := sess.BuildPath(param)
	fi, err := os.Stat(c.s.realPath(vpath))
	if err != nil {
		sess.WriteMessage(replyUnavailable, vpath+": "+describe(err))
		return
	}
	sess.WriteMessage(replyFileStatus, fi.ModTime().UTC().Format(timeValFormat))
}

func cmdMkd(c *ctrlConn, sess *ftpserver.Session, param string) {
	vpath := sess.BuildPath(param)
	if err := os.Mkdir(c.s.realPath(vpath), 0o755); err != nil {
		sess.WriteMessage(replyUnavailable, vpath+": "+describe(err))
		return
	}
	sess.WriteMessage(replyPathCreated, quotePath(vpath)+" directory created")
}

func cmdRmd(c *ctrlConn, sess *ftpserver.Session, param string) {
	vpath := sess.BuildPath(param)
	if vpath == "/" {
		sess.WriteMessage(replyUnavailable, "Can't remove the root directory")
		return
	}
	real := c.s.realPath(vpath)
	fi, err := os.Lstat(real)
	if err != nil {
		sess.WriteMessage(replyUnavailable, vpath+": "+describe(err))
		return
	}
	if !fi.IsDir() {
		sess.WriteMessage(replyUnavailable, vpath+": not a directory")
		return
	}
	if err := os.Remove(real); err != nil {
		sess.WriteMessage(replyUnavailable, vpath+": "+describe(err))
		return
	}
	sess.WriteMessage(replyFileActionOK, "Directory removed")
}

func cmdRnfr(c *ctrlConn, sess *ftpserver.Session, param string) {
	vpath := sess.BuildPath(param)
	if vpath == "/" {
		sess.WriteMessage(replyUnavailable, "Can't rename the root directory")
		return
	}
	if _, err := os.Lstat(c.s.realPath(vpath)); err != nil {
		sess.WriteMessage(replyUnavailable, vpath+": "+describe(err))
		return
	}
	c.renameFrom = vpath
	sess.WriteMessage(replyPending, "Ready for RNTO")
}

func cmdRnto(c *ctrlConn, sess *ftpserver.Session, param string) {
	from := c.renameFrom
	if from == "" {
		sess.WriteMessage(replyBadSequence, "RNFR required first")
		return
	}
	to := sess.BuildPath(param)
	if to == "/" {
		sess.WriteMessage(replyUnavailable, "Can't rename onto the root directory")
		return
	}
	if err := os.Rename(c.s.realPath(from), c.s.realPath(to)); err != nil {
		sess.WriteMessage(replyUnavailable, "Rename failed: "+describe(err))
		return
	}
	sess.WriteMessage(replyFileActionOK, "Rename successful")
}

// quotePath quotes a path for a 257 reply, doubling inner quotes (RFC 959
// appendix II).
func quotePath(p string) string {
	return `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
}

// describe turns a filesystem error into reply text without the real path.
func describe(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file or directory"
	case errors.Is(err, fs.ErrExist):
		return "already exists"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	case errors.Is(err, errNotDir):
		return "not a directory"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	return "failed"
}
