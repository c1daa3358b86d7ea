// Package ftp is the FTP wire protocol, and nothing else: it reads and
// writes command lines and (multi-line) replies, removes the Telnet
// sequences clients send before a verb (and refuses Telnet anywhere else,
// see Reader.ReadCommand), and encodes and decodes the addresses carried by PASV
// (227), EPSV (229), PORT and EPRT, and FEAT (211) feature lists.
//
// The package knows nothing of sockets, TLS, sessions or policy. Its
// readers and writers work on any io.Reader and io.Writer; its codecs are
// pure functions from strings to typed values (netip.AddrPort, uint16) and
// back, which never panic, whatever their input. Deciding what a command
// means, whether it is allowed, and which address to advertise belongs to
// the caller (package proxy and its helpers).
//
// # Lines
//
// Commands and replies are lines, not whatever one Read returned (RFC 959
// section 4). A line ends in CRLF; a bare LF is accepted as well. A line
// longer than MaxLineLength is consumed up to its end and reported as
// ErrLineTooLong, so the stream stays in sync and the caller can answer
// 500 and carry on. Reader.ReadReply returns a multi-line reply (RFC 959
// section 4.2) as one Reply; Reply.AppendWire writes it back so that no
// middle line can end it early and no CR or LF can be injected.
//
// # Errors
//
// Malformed input is reported with errors wrapping the sentinels
// ErrMalformedCommand, ErrMalformedReply, ErrUnsupportedProtocol and
// ErrLineTooLong; errors of the underlying reader (deadlines, closed
// connections) are passed on so that errors.Is works on them. Mapping an
// error to a reply code is the caller's job; the Status constants name the
// codes with the RFC section that defines them.
package ftp
