package main

import (
	"testing"
)

// TestLoadLDAPWithoutGroupSearch: the documented LDAP examples (bind mode,
// search mode, groups from memberOf only, no group_base_dn) load. The
// default of auth.ldap.group_filter must not count as "set": it made every
// configuration without group_base_dn fail with "group_filter: set without
// group_base_dn" (found by test/interop TestLDAPGateway).
func TestLoadLDAPWithoutGroupSearch(t *testing.T) {
	pw := writeConfig(t, "reader-secret\n") // any file: the bind password
	for name, ldap := range map[string]string{
		"bind": `    url: [ldaps://ldap1.corp.example:636]
    bind_dn_template: "uid=%s,ou=people,dc=corp,dc=example"
    group_attribute: memberOf
`,
		"search": `    url: [ldap://dc1.corp.example:389]
    start_tls: true
    base_dn: "dc=corp,dc=example"
    bind_dn: "CN=svc-ftpsgate,OU=Service,DC=corp,DC=example"
    bind_password_file: ` + pw + `
    user_filter: "(&(objectClass=user)(sAMAccountName=%s))"
    user_attribute: sAMAccountName
`,
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := loadBytes([]byte(goodConfig+"auth:\n  mode: gateway\n  providers: [ldap]\n  ldap:\n"+ldap), nil)
			if err != nil {
				t.Fatalf("the documented %s-mode example does not load: %v", name, err)
			}
			if c := cfg.auth.ldap; c == nil || c.GroupBaseDN != "" {
				t.Fatalf("ldap config %+v", c)
			}
		})
	}
	// With group_base_dn, the default filter applies; a filter without it
	// stays an error.
	withSearch := goodConfig + "auth:\n  mode: gateway\n  providers: [ldap]\n  ldap:\n    url: [ldaps://h]\n    bind_dn_template: \"uid=%s,dc=x\"\n"
	if _, err := loadBytes([]byte(withSearch+"    group_base_dn: \"ou=groups,dc=x\"\n"), nil); err != nil {
		t.Errorf("group_base_dn with the default group_filter: %v", err)
	}
	if _, err := loadBytes([]byte(withSearch+"    group_filter: \"(member=%s)\"\n"), nil); err == nil {
		t.Error("group_filter without group_base_dn loads")
	}
}
