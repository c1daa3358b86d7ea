package ldap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

func TestValidate(t *testing.T) {
	bind := Config{URLs: []string{"ldaps://dir.example.org"}, BindDNTemplate: "uid=%s,ou=people,dc=example,dc=org"}
	search := Config{URLs: []string{"ldap://dir.example.org:389"}, StartTLS: true, BaseDN: "dc=example,dc=org",
		BindDN: "cn=reader,dc=example,dc=org", BindPasswordFile: "/run/secrets/ldap"}
	for _, c := range []Config{
		bind,
		search,
		func() Config { c := search; c.BindDN, c.BindPasswordFile = "", ""; return c }(), // anonymous search
		func() Config {
			c := bind
			c.URLs = []string{"ldap://a", "ldap://b:1389"}
			c.AllowCleartext = true
			return c
		}(),
		func() Config {
			c := search
			c.GroupBaseDN = "ou=groups,dc=example,dc=org"
			c.GroupAttribute = "-"
			return c
		}(),
		func() Config {
			c := search
			c.UserFilter, c.UserAttribute = "(&(objectClass=user)(sAMAccountName=%s))", "sAMAccountName"
			return c
		}(),
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for _, c := range []struct {
		mod  func(*Config)
		key  string
		text string
	}{
		{func(c *Config) { c.URLs = nil }, "url", "no directory server"},
		{func(c *Config) { c.URLs = []string{"ldap://dir"} }, "url[0]", "clear text"},
		{func(c *Config) { c.URLs = []string{"http://dir"} }, "url[0]", "scheme"},
		{func(c *Config) { c.URLs = []string{"ldaps://"} }, "url[0]", "no host"},
		{func(c *Config) { c.URLs = []string{"ldaps://dir/dc=x"} }, "url[0]", "only scheme"},
		{func(c *Config) { c.URLs = []string{"ldaps://dir:99999"} }, "url[0]", "bad port"},
		{func(c *Config) { c.StartTLS = true }, "url[0]", "use one"},
		{func(c *Config) { c.InsecureSkipVerify, c.CAFile = true, "/ca.pem" }, "insecure_skip_verify", "ca_file"},
		{func(c *Config) { c.BaseDN = "dc=x" }, "bind_dn_template", "choose"},
		{func(c *Config) { c.BindDNTemplate = "" }, "base_dn", "neither"},
		{func(c *Config) { c.BindDNTemplate = "uid=%s,ou=%s" }, "bind_dn_template", "exactly once"},
		{func(c *Config) { c.BindDNTemplate = "uid=%d" }, "bind_dn_template", "exactly once"},
		{func(c *Config) { c.BindDNTemplate = "uid=%s,=,," }, "bind_dn_template", "not a DN"},
		{func(c *Config) { c.BindDN = "cn=r" }, "bind_password_file", "needs"},
		{func(c *Config) { c.BindPasswordFile = "/x" }, "bind_password_file", "without bind_dn"},
		{func(c *Config) { c.BindDN, c.BindPasswordFile, c.BindPassword = "cn=r", "/x", "y" }, "bind_password_file", "set one"},
		{func(c *Config) { c.BindDN, c.BindPassword = "not a dn", "y" }, "bind_dn", "not a DN"},
		{func(c *Config) { c.UserFilter = "(uid=%s" }, "user_filter", "not an LDAP filter"},
		{func(c *Config) { c.UserFilter = "(uid=x)" }, "user_filter", "exactly once"},
		{func(c *Config) { c.GroupFilter = "(member=%s)" }, "group_filter", "without group_base_dn"},
		{func(c *Config) { c.GroupBaseDN, c.GroupFilter = "ou=g", "member=%s))" }, "group_filter", "not an LDAP filter"},
		{func(c *Config) { c.UserAttribute = "uid)(x" }, "user_attribute", "not an attribute"},
		{func(c *Config) { c.GroupAttribute = "member of" }, "group_attribute", "not an attribute"},
		{func(c *Config) { c.GroupNameAttribute = "c n" }, "group_name_attribute", "not an attribute"},
		{func(c *Config) { c.Timeout = -1 }, "timeout", "negative"},
		{func(c *Config) { c.DialTimeout = -1 }, "dial_timeout", "negative"},
		{func(c *Config) { c.PoolSize = -1 }, "pool_size", "negative"},
		{func(c *Config) { c.MaxConnections = -1 }, "max_connections", "negative"},
	} {
		cfg := bind
		cfg.URLs = append([]string(nil), bind.URLs...)
		c.mod(&cfg)
		err := cfg.Validate()
		found := false
		for _, e := range confkey.List(err) {
			if e.Key == c.key && strings.Contains(e.Error(), c.text) {
				found = true
			}
		}
		if !found {
			t.Errorf("%+v: want a problem of %s with %q, got %v", cfg, c.key, c.text, err)
		}
	}
}

func TestNewReadsFiles(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{URLs: []string{"ldaps://127.0.0.1"}, BaseDN: "dc=x", BindDN: "cn=r,dc=x", BindPasswordFile: pw}
	p, err := New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if p.bindPassword != "s3cret" || p.Name() != "ldap" || p.servers[0].addr != "127.0.0.1:636" || p.servers[0].name != "127.0.0.1" {
		t.Errorf("%+v", p)
	}
	for _, c := range []struct {
		mod func(*Config)
		key string
	}{
		{func(c *Config) { c.BindPasswordFile = filepath.Join(dir, "missing") }, "bind_password_file"},
		{func(c *Config) { c.CAFile = filepath.Join(dir, "missing") }, "ca_file"},
		{func(c *Config) { c.CAFile = pw }, "ca_file"}, // no PEM in it
	} {
		cfg := cfg
		c.mod(&cfg)
		_, err := New(cfg, zerolog.Nop())
		if l := confkey.List(err); len(l) != 1 || l[0].Key != c.key {
			t.Errorf("want a problem of %s, got %v", c.key, err)
		}
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.BindPasswordFile = empty
	if _, err := New(cfg, zerolog.Nop()); err == nil {
		t.Error("an empty password file was taken")
	}
}

func TestSecretDoesNotPrint(t *testing.T) {
	c := Config{BindDN: "cn=r", BindPassword: "hunter2-zz"}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(f, c); strings.Contains(s, "hunter2") || !strings.Contains(s, "[redacted]") {
			t.Errorf("%s: %s", f, s)
		}
	}
}

func TestValidUser(t *testing.T) {
	for u, want := range map[string]bool{
		"alice": true, "Jürgen": true, "a b": true, "*": true, ")(uid=*": true,
		"": false, " a": false, "a ": false, "a\t": false, "a\x00b": false, "a\nb": false, "\xff": false, strings.Repeat("a", 257): false,
	} {
		if validUser(u) != want {
			t.Errorf("validUser(%q) = %v", u, !want)
		}
	}
}
