package proxy

import (
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/nat"
)

func TestListenersOverlap(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:21", "127.0.0.1:21", true},
		{"127.0.0.1:21", "127.0.0.1:990", false},
		{"0.0.0.0:21", "127.0.0.1:21", true},
		{"127.0.0.1:21", "0.0.0.0:21", true},
		{"[::]:21", "0.0.0.0:21", true}, // Linux dual-stack
		{":21", "10.0.0.1:21", true},
		{"[::]:21", "[::1]:21", true},
		{"0.0.0.0:21", "[::1]:21", false},
		{"10.0.0.1:21", "10.0.0.2:21", false},
		{"localhost:21", "127.0.0.1:21", true},
		{"localhost:21", "LOCALHOST:21", true},
		{"localhost:21", "10.0.0.1:21", false},
		{"0.0.0.0:21", "gw.example:21", true},
		{"[::ffff:127.0.0.1]:21", "127.0.0.1:21", true},
		{"127.0.0.1:ftp", "127.0.0.1:21", true},
		{"bad", "bad", false},
		{"127.0.0.1:0", "127.0.0.1:0", false}, // tests: each gets a free port
	} {
		if got := ListenersOverlap(tt.a, tt.b); got != tt.want {
			t.Errorf("ListenersOverlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestValidateAddressClashes(t *testing.T) {
	base := func() Config {
		return Config{
			Listeners: []Listener{
				{Name: "explicit", Address: "0.0.0.0:2121", TLS: TLSExplicit},
				{Name: "implicit", Address: "127.0.0.1:9990", TLS: TLSImplicit},
			},
			Backend: Backend{Address: "127.0.0.1:21"},
			Passive: nat.Config{Ports: nat.PortRange{Low: 50000, High: 50019}},
		}
	}
	for _, tt := range []struct {
		name string
		edit func(*Config)
		key  string // "" no problem
		msg  string
	}{
		{"ok", func(*Config) {}, "", ""},
		{"same address", func(c *Config) { c.Listeners[1].Address = "0.0.0.0:2121" }, "listeners[1].address", "clashes with listeners[0]"},
		{"wildcard covers", func(c *Config) { c.Listeners[1].Address = "127.0.0.1:2121" }, "listeners[1].address", "clashes with listeners[0]"},
		{"dual stack", func(c *Config) { c.Listeners[1].Address = "[::]:2121" }, "listeners[1].address", "clashes with listeners[0]"},
		{"listener in passive range", func(c *Config) { c.Listeners[1].Address = "127.0.0.1:50005" }, "passive.ports", "includes port 50005 of listeners[1]"},
	} {
		c := base()
		tt.edit(&c)
		var got *confkey.Error
		for _, e := range confkey.List(c.Validate()) {
			if e.Key == tt.key && strings.Contains(e.Err.Error(), tt.msg) {
				got = e
			} else if tt.key == "" || strings.HasPrefix(e.Key, "listeners") || e.Key == "passive.ports" {
				t.Errorf("%s: unexpected problem %v", tt.name, e)
			}
		}
		if tt.key != "" && got == nil {
			t.Errorf("%s: no %s problem containing %q in %v", tt.name, tt.key, tt.msg, c.Validate())
		}
	}
}

func TestCheckOtherListener(t *testing.T) {
	c := Config{
		Listeners: []Listener{{Name: "a", Address: "127.0.0.1:2121", TLS: TLSExplicit}},
		Passive:   nat.Config{Ports: nat.PortRange{Low: 50000, High: 50019}},
	}
	for addr, want := range map[string]string{
		"127.0.0.1:9100":  "",
		"unix:/run/x":     "",
		"127.0.0.1:2121":  "admin.address: 127.0.0.1:2121 clashes with listeners[0]",
		"0.0.0.0:2121":    "admin.address: 0.0.0.0:2121 clashes with listeners[0]",
		"127.0.0.1:50010": "admin.address: port 50010 is in the passive range 50000-50019",
		"10.9.9.9:50010":  "", // passive ports open on the listeners' hosts only
	} {
		err := c.CheckOtherListener("admin.address", addr)
		if want == "" && err != nil || want != "" && (err == nil || !strings.HasPrefix(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", addr, err, want)
		}
	}
}
