package ldap

import (
	"strings"

	"github.com/ftpsgate/ftpsgate/auth"
)

// Active Directory's sub-codes of invalidCredentials (49), in the
// diagnostic message of a failed bind, e.g.
// "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563".
// They are hexadecimal Windows error codes.
const (
	adUserNotFound       = 0x525 // no such user
	adInvalidPassword    = 0x52e // wrong password
	adInvalidLogonHours  = 0x530 // not permitted at this time
	adInvalidWorkstation = 0x531 // not permitted from this workstation
	adPasswordExpired    = 0x532
	adAccountDisabled    = 0x533
	adAccountExpired     = 0x701
	adMustChangePassword = 0x773 // the administrator set "must change at next logon"
	adAccountLocked      = 0x775
)

// parseADData finds the "data XXX" sub-code in an Active Directory bind
// diagnostic. ok is false when there is none (any other directory, or a
// malformed message).
func parseADData(diag string) (code uint32, ok bool) {
	const marker = "data "
	i := strings.Index(diag, marker)
	if i < 0 {
		return 0, false
	}
	s := diag[i+len(marker):]
	n := 0
	for n < len(s) && n < 8 && isHex(s[n]) {
		code = code<<4 | uint32(hexVal(s[n]))
		n++
	}
	if n == 0 || n < len(s) && (isHex(s[n]) || s[n] != ',' && s[n] != ' ') {
		// no digits, more than 8, or run into something else ("data 5zz")
		return 0, false
	}
	return code, true
}

// adBindError maps a failed bind's AD sub-code to the provider's errors:
// an expired password (or one the user must change) is auth.ErrExpired;
// a disabled, locked or expired account is auth.ErrDisabled; anything
// else (a wrong password, no sub-code) is auth.ErrDenied.
func adBindError(diag string) error {
	code, ok := parseADData(diag)
	if !ok {
		return auth.ErrDenied
	}
	switch code {
	case adPasswordExpired, adMustChangePassword:
		return auth.ErrExpired
	case adAccountDisabled, adAccountLocked, adAccountExpired:
		return auth.ErrDisabled
	}
	return auth.ErrDenied
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
