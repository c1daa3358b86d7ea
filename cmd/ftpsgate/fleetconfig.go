package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/ftpsgate/ftpsgate/fleet"
	"github.com/ftpsgate/ftpsgate/proxy"
)

// fleetFile is the fleet section: the shared state of a fleet of gateways
// in Redis (package fleet).
type fleetFile struct {
	Redis struct {
		Addresses    []string `mapstructure:"addresses"`
		MasterName   string   `mapstructure:"master_name"`
		Username     string   `mapstructure:"username"`
		PasswordFile string   `mapstructure:"password_file"`
		PasswordEnv  string   `mapstructure:"password_env"`
		DB           int      `mapstructure:"db"`
		TLS          struct {
			Enabled    bool   `mapstructure:"enabled"`
			CAFile     string `mapstructure:"ca_file"`
			CertFile   string `mapstructure:"cert_file"`
			KeyFile    string `mapstructure:"key_file"`
			ServerName string `mapstructure:"server_name"`
		} `mapstructure:"tls"`
	} `mapstructure:"redis"`
	KeyPrefix    string `mapstructure:"key_prefix"`
	Replica      string `mapstructure:"replica"`
	Timeout      string `mapstructure:"timeout"`
	OnStoreError string `mapstructure:"on_store_error"`
	Lease        string `mapstructure:"lease"`
}

func init() {
	for k, v := range map[string]any{
		"fleet.redis.addresses":       []string{},
		"fleet.redis.master_name":     "",
		"fleet.redis.username":        "",
		"fleet.redis.password_file":   "",
		"fleet.redis.password_env":    "",
		"fleet.redis.db":              0,
		"fleet.redis.tls.enabled":     false,
		"fleet.redis.tls.ca_file":     "",
		"fleet.redis.tls.cert_file":   "",
		"fleet.redis.tls.key_file":    "",
		"fleet.redis.tls.server_name": "",
		"fleet.key_prefix":            fleet.DefaultKeyPrefix,
		"fleet.replica":               "",
		"fleet.timeout":               fleet.DefaultTimeout.String(),
		"fleet.on_store_error":        "closed",
		"fleet.lease":                 fleet.DefaultLease.String(),
	} {
		defaults[k] = v
	}
}

// maxPasswordFile bounds what fleet.redis.password_file reads.
const maxPasswordFile = 4096

// buildFleet checks the fleet section; nil when fleet.redis.addresses is
// empty (the fleet is off). The password is read here, from its file or
// its environment variable, and never logged.
func buildFleet(p *problems, f fleetFile) *fleet.Config {
	const key = "fleet"
	if len(f.Redis.Addresses) == 0 {
		return nil
	}
	c := &fleet.Config{
		Addresses: f.Redis.Addresses, MasterName: f.Redis.MasterName, Username: f.Redis.Username, DB: f.Redis.DB,
		TLS: fleet.TLS{
			Enabled: f.Redis.TLS.Enabled, CAFile: f.Redis.TLS.CAFile, CertFile: f.Redis.TLS.CertFile,
			KeyFile: f.Redis.TLS.KeyFile, ServerName: f.Redis.TLS.ServerName,
		},
		KeyPrefix: f.KeyPrefix, Replica: f.Replica,
		Timeout: optDuration(p, key+".timeout", f.Timeout),
		Lease:   optDuration(p, key+".lease", f.Lease),
	}
	var err error
	c.OnStoreError, err = fleet.ParseMode(f.OnStoreError)
	p.add(key+".on_store_error", err)
	switch {
	case f.Redis.PasswordFile != "" && f.Redis.PasswordEnv != "":
		p.add(key+".redis.password_env", errors.New("give password_file or password_env, not both"))
	case f.Redis.PasswordFile != "":
		c.Password, err = readPasswordFile(f.Redis.PasswordFile)
		p.add(key+".redis.password_file", err)
	case f.Redis.PasswordEnv != "":
		var ok bool
		if c.Password, ok = os.LookupEnv(f.Redis.PasswordEnv); !ok || c.Password == "" {
			p.add(key+".redis.password_env", fmt.Errorf("the environment variable %s is not set", f.Redis.PasswordEnv))
		}
	}
	p.add(key, c.Validate())
	return c
}

// readPasswordFile reads a password: the first line of the file.
func readPasswordFile(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	buf := make([]byte, maxPasswordFile+1)
	n, _ := fh.Read(buf)
	if n > maxPasswordFile {
		return "", fmt.Errorf("%s is longer than %d bytes", path, maxPasswordFile)
	}
	pw, _, _ := strings.Cut(string(buf[:n]), "\n")
	pw = strings.TrimRight(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return pw, nil
}

// fleetWarnings lists the fleet settings that weaken a safe default.
func fleetWarnings(c *fleet.Config) []proxy.Warning {
	if c == nil || !c.Enabled() {
		return nil
	}
	var ws []proxy.Warning
	if c.OnStoreError == fleet.ModeLocal {
		ws = append(ws, proxy.Warning{Key: "fleet.on_store_error", Text: "local: while Redis is down each replica keeps its own bans, session caps, TOTP memory and lockout counts: a guesser gets N times the tries over N replicas, max_sessions_per_user holds per replica, and a TOTP code may be replayed on another replica"})
	}
	if c.Plaintext() {
		ws = append(ws, proxy.Warning{Key: "fleet.redis.tls.enabled", Text: "false with a Redis that is not on loopback: bans, user names, TOTP use records and the Redis password cross the network in clear, and whoever can write to Redis can lift bans and free session places"})
	}
	remote := false
	for _, a := range c.Addresses {
		h, _, _ := net.SplitHostPort(a)
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			remote = true
		}
	}
	if remote && c.Password == "" && c.TLS.CertFile == "" {
		ws = append(ws, proxy.Warning{Key: "fleet.redis.password_file", Text: "no password and no client certificate for a Redis that is not on loopback: anyone who reaches Redis can lift bans and free session places"})
	}
	return ws
}
