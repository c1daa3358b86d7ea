package ldap

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ftpsgate/ftpsgate/auth"
)

func TestADBindError(t *testing.T) {
	const prefix = "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, "
	for _, c := range []struct {
		diag string
		code uint32
		ok   bool
		want error
	}{
		{prefix + "data 52e, v4563", 0x52e, true, auth.ErrDenied},
		{prefix + "data 525, v4563", 0x525, true, auth.ErrDenied},
		{prefix + "data 530, v4563", 0x530, true, auth.ErrDenied},
		{prefix + "data 531, v4563", 0x531, true, auth.ErrDenied},
		{prefix + "data 532, v4563", 0x532, true, auth.ErrExpired},
		{prefix + "data 773, v4563", 0x773, true, auth.ErrExpired},
		{prefix + "data 533, v4563", 0x533, true, auth.ErrDisabled},
		{prefix + "data 701, v4563", 0x701, true, auth.ErrDisabled},
		{prefix + "data 775, v4563", 0x775, true, auth.ErrDisabled},
		{prefix + "data 775", 0x775, true, auth.ErrDisabled},                                                                         // at the end
		{prefix + "data 775 ", 0x775, true, auth.ErrDisabled},                                                                        // a space after
		{"80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1\x00", 0x52e, true, auth.ErrDenied}, // a NUL at the end (some AD versions)
		{"", 0, false, auth.ErrDenied},                                                                                               // OpenLDAP says nothing
		{"invalid credentials", 0, false, auth.ErrDenied},
		{prefix + "data , v1", 0, false, auth.ErrDenied},               // no digits
		{prefix + "data 5zz, v1", 0, false, auth.ErrDenied},            // not hex
		{prefix + "data 123456789, v1", 0, false, auth.ErrDenied},      // too long
		{prefix + "data 775x, v1", 0, false, auth.ErrDenied},           // run into a letter
		{prefix + "data 0000775, v1", 0x775, true, auth.ErrDisabled},   // leading zeros
		{prefix + "data 775, data 532", 0x775, true, auth.ErrDisabled}, // the first counts
	} {
		code, ok := parseADData(c.diag)
		if code != c.code || ok != c.ok {
			t.Errorf("parseADData(%q) = %x, %v; want %x, %v", c.diag, code, ok, c.code, c.ok)
		}
		if err := adBindError(c.diag); !errors.Is(err, c.want) {
			t.Errorf("adBindError(%q) = %v, want %v", c.diag, err, c.want)
		}
	}
}

// FuzzParseADData: never panics; a code found formats back to one that
// parses to itself; the mapping is always one of the three denials.
func FuzzParseADData(f *testing.F) {
	for _, s := range []string{"", "data 775, v1", "data ", "data 5", "xdata 12345678", "data ffffffff,", "data FFFFFFFFF"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, ok := parseADData(s)
		if !ok && code != 0 {
			t.Fatalf("%q: code %x without ok", s, code)
		}
		if ok {
			again, ok2 := parseADData(fmt.Sprintf("comment: x, data %x, v1", code))
			if !ok2 || again != code {
				t.Fatalf("%q: %x reparsed as %x, %v", s, code, again, ok2)
			}
		}
		err := adBindError(s)
		if !errors.Is(err, auth.ErrDenied) && !errors.Is(err, auth.ErrExpired) && !errors.Is(err, auth.ErrDisabled) {
			t.Fatalf("%q: %v", s, err)
		}
	})
}
