package ldap_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/auth/ldap"
)

// OpenLDAP in bind mode over LDAPS, and Active Directory in search mode
// over StartTLS with a service account.
func Example() {
	openldap := ldap.Config{
		URLs:           []string{"ldaps://ldap1.example.org", "ldaps://ldap2.example.org"},
		CAFile:         "/etc/ftpsgate/ldap-ca.pem",
		BindDNTemplate: "uid=%s,ou=people,dc=example,dc=org",
	}
	ad := ldap.Config{
		URLs:             []string{"ldap://dc1.corp.example.com"},
		StartTLS:         true,
		BaseDN:           "DC=corp,DC=example,DC=com",
		BindDN:           "CN=ftpsgate,OU=Service Accounts,DC=corp,DC=example,DC=com",
		BindPasswordFile: "/etc/ftpsgate/ldap-bind-password",
		UserFilter:       "(&(objectClass=user)(sAMAccountName=%s))",
		UserAttribute:    "sAMAccountName",
		Timeout:          3 * time.Second,
	}
	fmt.Println(openldap.Validate(), ad.Validate())
	// Output: <nil> <nil>
}

// A login: the outcomes the gateway maps to replies. (Not run: it would
// look the directory up.)
func Example_verify() {
	p, err := ldap.New(ldap.Config{
		URLs:           []string{"ldaps://ldap.example.org"},
		BindDNTemplate: "uid=%s,ou=people,dc=example,dc=org",
	}, zerolog.Nop())
	if err != nil {
		return
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := p.Verify(ctx, "alice", "password")
	switch {
	case err == nil:
		_ = id // id.User, id.Groups
	case errors.Is(err, auth.ErrUnavailable):
		// 421: the directory does not answer
	default:
		// 530 (auth.ErrDenied, ErrExpired, ErrDisabled, ErrUnknownUser)
	}
}
