package testslapd

import (
	"net"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

func TestParseLDIF(t *testing.T) {
	reqs, err := parseLDIF(`# a comment
dn: uid=a,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: person
cn: A
  long
description:: aMOpbGxv

dn: cn=g,dc=x
member: uid=a
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 2 || reqs[0].DN != "uid=a,ou=people,dc=example,dc=org" || reqs[1].DN != "cn=g,dc=x" {
		t.Fatalf("%+v", reqs)
	}
	got := map[string][]string{}
	for _, a := range reqs[0].Attributes {
		got[a.Type] = a.Vals
	}
	if len(got["objectClass"]) != 2 || got["cn"][0] != "A long" || got["description"][0] != "héllo" {
		t.Errorf("%v", got)
	}
	for _, bad := range []string{"", "cn: x\n", "dn: x\nnocolon\n", "dn: x\nd:: !!\n"} {
		if _, err := parseLDIF(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestStart runs a slapd and searches it over both ports.
func TestStart(t *testing.T) {
	s := Start(t)
	s.AddLDIF(t, `dn: uid=u1,`+PeopleDN+`
objectClass: inetOrgPerson
uid: u1
cn: U
sn: One
userPassword: `+SSHA("pw1")+`

dn: cn=staff,`+GroupsDN+`
objectClass: groupOfNames
cn: staff
member: uid=u1,`+PeopleDN+`
`)
	l, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Bind("uid=u1,"+PeopleDN, "pw1"); err != nil {
		t.Fatal(err)
	}
	res, err := l.Search(goldap.NewSearchRequest("uid=u1,"+PeopleDN, goldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"memberOf"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Entries[0].GetAttributeValues("memberOf"); len(got) != 1 || got[0] != "cn=staff,"+GroupsDN {
		t.Errorf("memberOf %q", got)
	}
	if err := l.Bind("uid=u1,"+PeopleDN, "wrong"); !goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
		t.Errorf("wrong password: %v", err)
	}
}

// TestRestart: a killed server comes back on the same ports with the same
// entries.
func TestRestart(t *testing.T) {
	s := Start(t)
	s.AddLDIF(t, `dn: uid=u1,`+PeopleDN+`
objectClass: inetOrgPerson
uid: u1
cn: U
sn: One
userPassword: `+SSHA("pw1")+`
`)
	s.Kill(t)
	if _, err := goldap.DialURL(s.URL); err == nil {
		t.Fatal("a killed slapd answers")
	}
	s.Restart(t)
	l, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	defer l.Close()
	if err := l.Bind("uid=u1,"+PeopleDN, "pw1"); err != nil {
		t.Errorf("bind after Restart: %v", err)
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(s.LDAPSURL, "ldaps://"))
	if err != nil {
		t.Errorf("the LDAPS port after Restart: %v", err)
	} else {
		c.Close()
	}
}
