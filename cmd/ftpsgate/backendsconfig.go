package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/upstream"
)

// backendFile is one backend: the backend section, or an entry of
// backends (which also has a name).
type backendFile struct {
	Name               string     `mapstructure:"name"`
	Address            string     `mapstructure:"address"`
	TLS                string     `mapstructure:"tls"`
	CAFile             string     `mapstructure:"ca_file"`
	ServerName         string     `mapstructure:"server_name"`
	InsecureSkipVerify bool       `mapstructure:"insecure_skip_verify"`
	PinSHA256          string     `mapstructure:"pin_sha256"`
	ClientCertFile     string     `mapstructure:"client_cert_file"`
	ClientKeyFile      string     `mapstructure:"client_key_file"`
	ProxyProtocol      string     `mapstructure:"proxy_protocol"`
	DataPorts          string     `mapstructure:"data_ports"`
	Via                string     `mapstructure:"via"`
	Health             healthFile `mapstructure:"health"`
}

// healthFile is a backend's health check.
type healthFile struct {
	Interval     string `mapstructure:"interval"`
	Timeout      string `mapstructure:"timeout"`
	Rise         int    `mapstructure:"rise"`
	Fall         int    `mapstructure:"fall"`
	TLS          bool   `mapstructure:"tls"`
	User         string `mapstructure:"user"`
	PasswordFile string `mapstructure:"password_file"`
	PasswordEnv  string `mapstructure:"password_env"`
}

type poolFile struct {
	Name    string   `mapstructure:"name"`
	Members []string `mapstructure:"members"`
	Balance string   `mapstructure:"balance"`
}

type routingFile struct {
	Default string `mapstructure:"default"`
	Rules   []struct {
		Users     []string `mapstructure:"users"`
		Groups    []string `mapstructure:"groups"`
		Hosts     []string `mapstructure:"hosts"`
		Listeners []string `mapstructure:"listeners"`
		Networks  []string `mapstructure:"networks"`
		Target    string   `mapstructure:"target"`
	} `mapstructure:"rules"`
}

// buildBackends fills c's backend, backends, pools and routing.
func buildBackends(p *problems, fc *fileConfig, c *proxy.Config) {
	if fc.Backend.Name != "" {
		p.add("backend.name", errors.New("the backend section is the backend \"default\"; names are for entries of backends"))
	}
	if len(fc.Backends) > 0 && fc.Backend != defaultBackendFile {
		// Any backend.* key besides backends: which would win is anyone's
		// guess (proxy.Config.Validate only sees the address).
		p.add("backend", errors.New("set either backend (one backend) or backends (several), not both"))
	}
	c.Backend = buildBackend(p, "backend", fc.Backend)
	for i, bf := range fc.Backends {
		c.Backends = append(c.Backends, buildBackend(p, fmt.Sprintf("backends[%d]", i), bf))
	}
	for i, pf := range fc.Pools {
		bal, err := upstream.ParseBalance(pf.Balance)
		p.add(fmt.Sprintf("pools[%d].balance", i), err)
		c.Pools = append(c.Pools, upstream.Pool{Name: pf.Name, Members: pf.Members, Balance: bal})
	}
	c.Routing.Default = fc.Routing.Default
	for i, rf := range fc.Routing.Rules {
		key := fmt.Sprintf("routing.rules[%d]", i)
		c.Routing.Rules = append(c.Routing.Rules, upstream.Rule{
			Users: rf.Users, Groups: rf.Groups, Hosts: rf.Hosts, Listeners: rf.Listeners,
			Networks: prefixes(p, key+".networks", rf.Networks), Target: rf.Target,
		})
	}
}

// viaKeys is the key (backend.via or backends[i].via) of each via set in
// c, with the group it names.
func viaKeys(c proxy.Config) map[string]string {
	vias := map[string]string{}
	for i, b := range c.Backends {
		if b.Via != "" {
			vias[fmt.Sprintf("backends[%d].via", i)] = b.Via
		}
	}
	if c.Backend.Via != "" && len(c.Backends) == 0 {
		vias["backend.via"] = c.Backend.Via
	}
	return vias
}

// defaultBackendFile is the backend section as the defaults leave it.
var defaultBackendFile = backendFile{TLS: "none", ProxyProtocol: "off", Health: healthFile{Interval: "0s", Rise: 2, Fall: 3}}

// buildBackend turns one backend's strings into typed values.
func buildBackend(p *problems, key string, bf backendFile) proxy.Backend {
	mode, err := proxy.ParseTLSMode(bf.TLS)
	p.add(key+".tls", err)
	b := proxy.Backend{
		Name:    bf.Name,
		Address: bf.Address,
		TLS:     mode,
		Trust: policy.BackendTLS{
			CAFile: bf.CAFile, ServerName: bf.ServerName,
			InsecureSkipVerify: bf.InsecureSkipVerify,
			ClientCertFile:     bf.ClientCertFile, ClientKeyFile: bf.ClientKeyFile,
		},
		Via: bf.Via,
	}
	switch strings.ToLower(bf.ProxyProtocol) {
	case "", "off", "false":
	case "v1", "1":
		b.ProxyProtocol = 1
	case "v2", "2":
		b.ProxyProtocol = 2
	default:
		p.add(key+".proxy_protocol", fmt.Errorf("%q is not a PROXY protocol version (want off, v1 or v2)", bf.ProxyProtocol))
	}
	if bf.PinSHA256 != "" {
		b.Trust.PinSHA256, err = policy.ParsePin(bf.PinSHA256)
		p.add(key+".pin_sha256", err)
	}
	if bf.DataPorts != "" {
		b.DataPorts, err = nat.ParsePortRange(bf.DataPorts)
		p.add(key+".data_ports", err)
	}
	h := bf.Health
	b.Health = proxy.HealthCheck{
		HealthConfig: upstream.HealthConfig{
			Interval: optDur(p, key+".health.interval", h.Interval),
			Timeout:  optDur(p, key+".health.timeout", h.Timeout),
			Rise:     h.Rise, Fall: h.Fall,
		},
		TLS:  h.TLS,
		User: h.User,
	}
	if h.User != "" || h.PasswordFile != "" || h.PasswordEnv != "" {
		if h.User == "" {
			p.add(key+".health.user", errors.New("must be set with a probe password"))
		}
		pass, err := secret(h.PasswordFile, h.PasswordEnv)
		p.add(secretKey(key+".health.password", h.PasswordFile, h.PasswordEnv), err)
		b.Health.Password = pass
	}
	return b
}

// optDur parses a duration that may be empty or 0 (off, or the default).
func optDur(p *problems, key, s string) time.Duration {
	if s = strings.TrimSpace(s); s == "" || s == "0" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		err = errors.New("is negative")
	}
	p.add(key, err)
	return d
}
