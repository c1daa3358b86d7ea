package main

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/vfs"
)

const accessBase = `listeners: [{name: partners, address: "127.0.0.1:2121", tls: explicit}]
backend: {address: "127.0.0.1:21"}
policy: {allowed_site_commands: [CHMOD, UMASK]}
`

const accessPartner = `access:
  profiles:
    Partner:
      root: /partners/%s
      paths:
        - {path: /, allow: [list]}
        - {path: /incoming/**, allow: [list, write, mkdir]}
        - {path: /outgoing/**, allow: [list, read]}
      deny_names: ["*.exe", "*.bat"]
      max_upload: 100MiB
      commands: [RETR, STOR, LIST, SITE]
      site: [chmod]
      limits: {max_sessions: 2, bandwidth: 1048576, networks: [192.0.2.0/24], listeners: [partners]}
    staff: {root: /srv/ftp}
    open: {}
  users: [{user: Alice, profile: partner}, {user: root, profile: STAFF}, {user: admin, profile: open}]
  default: Partner
`

// TestAccessConfig: the partner example loads into a vfs.Access whose
// policies decide as configured; user names keep their case.
func TestAccessConfig(t *testing.T) {
	cfg, err := loadFile(writeConfig(t, accessBase+accessPartner))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.access == nil {
		t.Fatal("no access section")
	}
	p, err := cfg.access.For("Alice", nil)
	if err != nil || p == nil {
		t.Fatalf("For(Alice) = %v, %v", p, err)
	}
	if p.Profile != "partner" || p.Root.Dir() != "/partners/Alice" || p.MaxUpload != 100<<20 || p.Bandwidth != 1<<20 || p.MaxSessions != 2 {
		t.Errorf("policy %+v", p)
	}
	if d := p.CheckPath(vfs.OpWrite, "/incoming/a.csv"); !d.Allowed || d.Rule != "access.profiles.partner.paths[1]" {
		t.Errorf("write incoming: %+v", d)
	}
	if d := p.CheckPath(vfs.OpWrite, "/outgoing/a.csv"); d.Allowed {
		t.Errorf("write outgoing: %+v", d)
	}
	if d := p.CheckName(vfs.OpWrite, "/incoming/A.EXE"); d.Allowed {
		t.Errorf("upload exe: %+v", d)
	}
	if d := p.CheckCommand("DELE", "x"); d.Allowed {
		t.Errorf("DELE: %+v", d)
	}
	if d := p.CheckSource(netip.MustParseAddr("198.51.100.1"), "partners"); d.Allowed {
		t.Errorf("source: %+v", d)
	}
	if p, _ := cfg.access.For("admin", nil); p == nil || p.Profile != "open" || p.Root.Confined() || !p.CheckPath(vfs.OpDelete, "/x").Allowed {
		t.Errorf("admin: %+v", p)
	}
	if p, _ := cfg.access.For("root", nil); p == nil || p.Profile != "staff" {
		t.Errorf("root: %+v", p)
	}
	// "alice" is not "Alice": the default profile, with her own root.
	if p, _ := cfg.access.For("alice", nil); p == nil || p.Root.Dir() != "/partners/alice" {
		t.Errorf("alice: %+v", p)
	}

	none, err := loadFile(writeConfig(t, accessBase))
	if err != nil || none.access != nil {
		t.Fatalf("no access section: %v %v", none.access, err)
	}
}

func TestAccessConfigProblems(t *testing.T) {
	cases := []struct {
		name, yaml string
		keys       []string
	}{
		{"unknown profile", "access: {profiles: {p: {}}, users: [{user: a, profile: q}], default: nope}",
			[]string{"access.users[0].profile", "access.default"}},
		{"duplicate user", "access: {profiles: {p: {}}, users: [{user: a, profile: p}, {user: a, profile: p}, {profile: p}]}",
			[]string{"access.users[1].user", "access.users[2].user"}},
		{"rules", "access: {profiles: {p: {root: rel, paths: [{path: /a//b, allow: [fly]}], max_upload: -1, limits: {networks: [10.0.0.0/40]}}}}",
			[]string{"access.profiles.p.root", "access.profiles.p.paths[0].path", "access.profiles.p.paths[0].allow", "access.profiles.p.max_upload", "access.profiles.p.limits.networks[0]"}},
		{"site beyond the global list", "access: {profiles: {p: {site: [CHMOD, EXEC]}}}",
			[]string{"access.profiles.p.site[1]"}},
		{"unknown listener", "access: {profiles: {p: {limits: {listeners: [partners, public]}}}}",
			[]string{"access.profiles.p.limits.listeners[1]"}},
		{"groups in passthrough", "access: {profiles: {p: {}}, groups: [{group: g, profile: p}]}",
			[]string{"access.groups"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadFile(writeConfig(t, accessBase+c.yaml+"\n"))
			var keys []string
			for _, e := range confkey.List(err) {
				keys = append(keys, e.Key)
			}
			if strings.Join(keys, " ") != strings.Join(c.keys, " ") {
				t.Errorf("keys %q, want %q (%v)", keys, c.keys, err)
			}
		})
	}
	// An unknown key inside a profile is an error too.
	if _, err := loadFile(writeConfig(t, accessBase+"access: {profiles: {p: {rot: /x}}}\n")); err == nil || !strings.Contains(err.Error(), "rot") {
		t.Errorf("unknown key: %v", err)
	}
}

// TestAccessReload: Reload reads the file's access section again and swaps
// it in; a section with problems keeps the last good one.
func TestAccessReload(t *testing.T) {
	path := writeConfig(t, accessBase+accessPartner)
	cfg, err := loadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := newAccessReloader(path, cfg)
	if p, _ := r.Holder.For("bob", nil); p == nil || p.Profile != "partner" {
		t.Fatalf("before: %+v", p)
	}
	write := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(accessBase + strings.Replace(accessPartner, "default: Partner", "default: staff", 1))
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if p, _ := r.Holder.For("bob", nil); p == nil || p.Profile != "staff" {
		t.Fatalf("after reload: %+v", p)
	}
	write(accessBase + strings.Replace(accessPartner, "default: Partner", "default: nobody", 1))
	if err := r.Reload(); err == nil || !strings.Contains(err.Error(), "access.default") {
		t.Fatalf("bad section reloaded: %v", err)
	}
	if p, _ := r.Holder.For("bob", nil); p == nil || p.Profile != "staff" {
		t.Fatalf("after a failed reload: %+v", p)
	}
	// Checked against the running listeners, not the file's new ones.
	write(strings.Replace(accessBase, "name: partners", "name: other", 1) + strings.Replace(accessPartner, "listeners: [partners]", "listeners: [other]", 1))
	if err := r.Reload(); err == nil || !strings.Contains(err.Error(), "limits.listeners") {
		t.Fatalf("a profile naming a listener that is not running: %v", err)
	}
	write(accessBase)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if p, err := r.Holder.For("bob", nil); p != nil || err != nil {
		t.Fatalf("section removed: %+v %v", p, err)
	}
}
