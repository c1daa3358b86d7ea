package ftp

import "errors"

// MaxLineLength is the longest command or reply line, in bytes, without
// the line end, that a Reader returns.
const MaxLineLength = 4096

// Sentinel errors. Errors returned by this package wrap one of these (test
// with errors.Is), except errors of the underlying reader or writer, which
// are passed on.
var (
	// ErrLineTooLong: a line exceeded MaxLineLength. The line has been
	// consumed; the stream is still in sync (answer 500).
	ErrLineTooLong = errors.New("ftp: line too long")
	// ErrMalformedCommand: a command line or a command's argument does not
	// follow the syntax (answer 500 or 501).
	ErrMalformedCommand = errors.New("ftp: malformed command")
	// ErrMalformedReply: a reply (or a reply's text, such as a 227's
	// address) does not follow the syntax.
	ErrMalformedReply = errors.New("ftp: malformed reply")
	// ErrUnsupportedProtocol: an EPRT or EPSV network protocol other than
	// 1 (IPv4) or 2 (IPv6) (answer 522).
	ErrUnsupportedProtocol = errors.New("ftp: unsupported network protocol")
)
