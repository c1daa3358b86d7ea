package ftp

import (
	"fmt"
	"io"
	"strings"
)

// maxVerbLength is the longest command verb accepted (RFC 959 commands are
// 3 or 4 letters; extensions stay short).
const maxVerbLength = 8

// Command is one command line from a client (RFC 959 section 5.3).
type Command struct {
	// Verb is the command name, upper-cased: "RETR".
	Verb string
	// Arg is everything after the first space, byte for byte: file names
	// may begin or end with spaces. "" if there is none.
	Arg string
}

// ParseCommand parses one command line, given without its line end.
//
// The verb is 1 to 8 ASCII letters, in any case, possibly ending in digits
// (XSHA256), and is stored upper-cased.
// It is separated from the argument by exactly one space; further spaces
// belong to the argument. An empty line, a verb with anything else,
// or a CR, LF, NUL or 0xFF (Telnet IAC, see Reader.ReadCommand) anywhere in
// the line is an error wrapping ErrMalformedCommand. Errors are logged, so
// they name no byte of the line but a valid verb, masked as in LogString:
// "PASS\tsecret" and "PASS:secret" are bad verbs, and secrets.
func ParseCommand(line string) (Command, error) {
	if line == "" {
		return Command{}, fmt.Errorf("%w: empty line", ErrMalformedCommand)
	}
	verb, arg, _ := strings.Cut(line, " ")
	if !validVerb(verb) {
		return Command{}, fmt.Errorf("%w: bad verb (%d bytes)", ErrMalformedCommand, len(verb))
	}
	if err := checkArg(strings.ToUpper(verb), arg); err != nil {
		return Command{}, err
	}
	return Command{Verb: strings.ToUpper(verb), Arg: arg}, nil
}

// checkArg refuses an argument that could end the line or be read as
// Telnet by the backend. The error names verb, which must be valid, as
// logVerb does.
func checkArg(verb, arg string) error {
	if strings.ContainsAny(arg, "\r\n\x00") {
		return fmt.Errorf("%w: control character in argument of %s", ErrMalformedCommand, logVerb(verb))
	}
	if strings.IndexByte(arg, telnetIAC) >= 0 {
		return fmt.Errorf("%w: Telnet IAC (0xFF) in argument of %s", ErrMalformedCommand, logVerb(verb))
	}
	return nil
}

// validVerb reports whether v is 1 to maxVerbLength ASCII letters, the
// last of which may be digits after a letter (XMD5, XSHA1, XSHA256).
func validVerb(v string) bool {
	if v == "" || len(v) > maxVerbLength {
		return false
	}
	digits := false
	for i := 0; i < len(v); i++ {
		if i > 0 && v[i] >= '0' && v[i] <= '9' {
			digits = true
			continue
		}
		c := v[i] | 0x20 // ASCII lower case; non-letters stay non-letters
		if c < 'a' || c > 'z' || digits {
			return false
		}
	}
	return true
}

// String returns the command's wire form without the line end: "VERB" or
// "VERB arg".
func (c Command) String() string {
	if c.Arg == "" {
		return c.Verb
	}
	return c.Verb + " " + c.Arg
}

// LogString is what may be logged of the command; use it for every
// command that is logged:
//
//   - a command whose verb starts with PASS or ACCT, in any case, carries
//     a credential, maybe run together with the verb ("PASSabc" parses as
//     the verb PASSABC): it is "PASS ****" for PASS with an argument,
//     "PASS" for PASS alone, and the four letters and "****" for a longer
//     verb ("PASS****"), whatever follows;
//   - a verb KnownVerb does not know keeps its name, but its argument is
//     replaced by "****": a client that sends something odd may have sent
//     a secret;
//   - SITE with a subcommand that changes a password (a name holding
//     PASS, PSWD or PWD: Serv-U's SITE PSWD old new) keeps the
//     subcommand only: "SITE PSWD ****";
//   - any other command is logged as String returns it.
func (c Command) LogString() string {
	verb := c.Verb
	switch {
	case isSecretVerb(verb):
		if len(verb) > 4 {
			return verb[:4] + "****"
		}
		if c.Arg != "" {
			return verb + " ****"
		}
		return verb
	case !KnownVerb(verb) && c.Arg != "":
		return verb + " ****"
	case strings.EqualFold(verb, "SITE"):
		arg := strings.TrimLeft(c.Arg, " ")
		sub, rest, _ := strings.Cut(arg, " ")
		if rest != "" && isPasswordSite(sub) {
			kept := len(c.Arg) - len(arg) + len(sub) + 1 // the spaces, the subcommand, one space
			return verb + " " + c.Arg[:kept] + "****"
		}
	}
	return c.String()
}

// isSecretVerb reports whether verb starts with PASS or ACCT, in any case:
// its argument, or its own tail, may be a credential.
func isSecretVerb(verb string) bool {
	return len(verb) >= 4 && (strings.EqualFold(verb[:4], "PASS") || strings.EqualFold(verb[:4], "ACCT"))
}

// LogVerb is the command's verb as logs and errors may name it: masked
// like LogString masks it when it starts with PASS or ACCT.
func (c Command) LogVerb() string { return logVerb(c.Verb) }

// isPasswordSite reports whether a SITE subcommand may carry passwords.
func isPasswordSite(sub string) bool {
	up := strings.ToUpper(sub)
	return strings.Contains(up, "PASS") || strings.Contains(up, "PSWD") || strings.Contains(up, "PWD")
}

// logVerb is verb as error messages may name it: cut to its first four
// letters and "****" when it starts with PASS or ACCT (see LogString).
func logVerb(verb string) string {
	if isSecretVerb(verb) && len(verb) > 4 {
		return verb[:4] + "****"
	}
	return verb
}

// WriteCommand writes c as "VERB arg\r\n" in one Write. A verb that is not
// 1 to 8 ASCII letters, or a CR, LF, NUL or 0xFF in the argument, is
// refused with an error wrapping ErrMalformedCommand, and nothing is
// written: no command can be injected through an argument, and no byte
// reaches the backend that it could read as Telnet IAC.
func WriteCommand(w io.Writer, c Command) error {
	if !validVerb(c.Verb) {
		return fmt.Errorf("%w: bad verb (%d bytes)", ErrMalformedCommand, len(c.Verb))
	}
	if err := checkArg(c.Verb, c.Arg); err != nil {
		return err
	}
	b := make([]byte, 0, len(c.Verb)+len(c.Arg)+3)
	b = append(b, c.Verb...)
	if c.Arg != "" {
		b = append(b, ' ')
		b = append(b, c.Arg...)
	}
	b = append(b, '\r', '\n')
	_, err := w.Write(b)
	return err
}

// truncate returns s cut to at most n bytes, for error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
