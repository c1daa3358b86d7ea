package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/audit"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/vfs"
)

// remoteAuditFile are the audit sinks besides the file: syslog, an HTTP
// collector (each spooled on disk while it is down), an xferlog file.
type remoteAuditFile struct {
	Syslog struct {
		Address            string `mapstructure:"address"`
		Network            string `mapstructure:"network"`
		Format             string `mapstructure:"format"`
		Facility           string `mapstructure:"facility"`
		Hostname           string `mapstructure:"hostname"`
		CAFile             string `mapstructure:"ca_file"`
		ServerName         string `mapstructure:"server_name"`
		CertFile           string `mapstructure:"cert_file"`
		KeyFile            string `mapstructure:"key_file"`
		InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify"` // weakening
		MaxMessage         int    `mapstructure:"max_message"`
		ResendOnReconnect  int    `mapstructure:"resend_on_reconnect"`
		SpoolDir           string `mapstructure:"spool_dir"`
		SpoolMaxSize       string `mapstructure:"spool_max_size"`
	} `mapstructure:"syslog"`
	HTTP struct {
		URL                string `mapstructure:"url"`
		TokenFile          string `mapstructure:"token_file"`
		CAFile             string `mapstructure:"ca_file"`
		CertFile           string `mapstructure:"cert_file"`
		KeyFile            string `mapstructure:"key_file"`
		Batch              int    `mapstructure:"batch"`
		Timeout            string `mapstructure:"timeout"`
		SourceType         string `mapstructure:"sourcetype"`
		Index              string `mapstructure:"index"`
		TokenScheme        string `mapstructure:"token_scheme"`
		InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify"` // weakening
		AllowHTTP          bool   `mapstructure:"allow_http"`           // weakening
		SpoolDir           string `mapstructure:"spool_dir"`
		SpoolMaxSize       string `mapstructure:"spool_max_size"`
	} `mapstructure:"http"`
	Xferlog struct {
		Path string `mapstructure:"path"`
		UTC  bool   `mapstructure:"utc"`
	} `mapstructure:"xferlog"`
}

func init() {
	for k, v := range map[string]any{
		"audit.syslog.address":              "",
		"audit.syslog.network":              "tls",
		"audit.syslog.format":               "json",
		"audit.syslog.facility":             "local0",
		"audit.syslog.hostname":             "",
		"audit.syslog.ca_file":              "",
		"audit.syslog.server_name":          "",
		"audit.syslog.cert_file":            "",
		"audit.syslog.key_file":             "",
		"audit.syslog.insecure_skip_verify": false,
		"audit.syslog.max_message":          0,
		"audit.syslog.resend_on_reconnect":  256,
		"audit.syslog.spool_dir":            "",
		"audit.syslog.spool_max_size":       "256MiB",
		"audit.http.url":                    "",
		"audit.http.token_file":             "",
		"audit.http.ca_file":                "",
		"audit.http.cert_file":              "",
		"audit.http.key_file":               "",
		"audit.http.batch":                  100,
		"audit.http.timeout":                "10s",
		"audit.http.sourcetype":             "ftpsgate:audit",
		"audit.http.index":                  "",
		"audit.http.token_scheme":           "Bearer",
		"audit.http.insecure_skip_verify":   false,
		"audit.http.allow_http":             false,
		"audit.http.spool_dir":              "",
		"audit.http.spool_max_size":         "256MiB",
		"audit.xferlog.path":                "",
		"audit.xferlog.utc":                 false,
	} {
		defaults[k] = v
	}
}

// remoteAudit is the checked remote part of the audit section.
type remoteAudit struct {
	syslog      *audit.SyslogConfig
	syslogSpool audit.SpoolConfig
	http        *audit.HTTPConfig
	httpSpool   audit.SpoolConfig
	xferlog     *audit.XferlogConfig
}

func (r remoteAudit) any() bool { return r.syslog != nil || r.http != nil || r.xferlog != nil }

// buildSpool checks a remote sink's spool: required, so that an outage
// of the receiver loses nothing.
func buildSpool(p *problems, key, dir, size string) audit.SpoolConfig {
	sc := audit.SpoolConfig{Dir: dir}
	if dir == "" {
		p.add(key+".spool_dir", errors.New("required: records wait there while the receiver is down"))
	}
	n, err := vfs.ParseSize(size)
	p.add(key+".spool_max_size", err)
	sc.MaxBytes = n
	return sc
}

// buildRemoteAudit checks the remote sinks that are configured (an empty
// address, url or path leaves a sink out).
func buildRemoteAudit(p *problems, f remoteAuditFile) remoteAudit {
	var r remoteAudit
	if s := f.Syslog; s.Address != "" {
		fac, err := audit.ParseSyslogFacility(s.Facility)
		p.add("audit.syslog.facility", err)
		c := &audit.SyslogConfig{Network: s.Network, Address: s.Address, Format: s.Format, Facility: fac,
			Hostname: s.Hostname, CAFile: s.CAFile, ServerName: s.ServerName, CertFile: s.CertFile, KeyFile: s.KeyFile,
			InsecureSkipVerify: s.InsecureSkipVerify, MaxMessage: s.MaxMessage, Resend: s.ResendOnReconnect, Version: versionString()}
		p.addNew(confkey.Under("audit.syslog", c.Validate()))
		r.syslog = c
		r.syslogSpool = buildSpool(p, "audit.syslog", s.SpoolDir, s.SpoolMaxSize)
	}
	if h := f.HTTP; h.URL != "" {
		c := &audit.HTTPConfig{URL: h.URL, TokenFile: h.TokenFile, CAFile: h.CAFile, CertFile: h.CertFile, KeyFile: h.KeyFile,
			Batch: h.Batch, Timeout: optDuration(p, "audit.http.timeout", h.Timeout), SourceType: h.SourceType, Index: h.Index,
			TokenScheme: h.TokenScheme, InsecureSkipVerify: h.InsecureSkipVerify, AllowHTTP: h.AllowHTTP}
		p.addNew(confkey.Under("audit.http", c.Validate()))
		r.http = c
		r.httpSpool = buildSpool(p, "audit.http", h.SpoolDir, h.SpoolMaxSize)
	}
	if x := f.Xferlog; x.Path != "" {
		c := &audit.XferlogConfig{Path: x.Path, UTC: x.UTC}
		p.addNew(confkey.Under("audit.xferlog", c.Validate()))
		r.xferlog = c
	}
	return r
}

// openRemoteAudit opens the remote sinks, each remote one behind its
// spool; on an error the ones opened are closed.
func openRemoteAudit(r remoteAudit, log zerolog.Logger) (sinks []audit.Sink, err error) {
	defer func() {
		if err != nil {
			for _, s := range sinks {
				_ = s.Close()
			}
			sinks = nil
		}
	}()
	spooled := func(name string, inner audit.Sink, sc audit.SpoolConfig) (audit.Sink, error) {
		l := log.With().Str("component", "audit").Str("sink", name).Logger()
		s, err := audit.NewSpool(sc, inner, audit.SpoolHooks{
			Up: func(up bool, err error) {
				if up {
					l.Info().Msg("audit sink delivering again")
				} else {
					l.Error().Err(err).Str("spool", filepath.Clean(sc.Dir)).Msg("audit sink down: records wait in the spool")
				}
			},
			Dropped: func(n int, err error) {
				l.Error().Err(err).Int("records", n).Msg("audit records lost in the spool")
			},
		})
		if err != nil {
			_ = inner.Close()
			return nil, fmt.Errorf("audit.%s.spool_dir: %w", name, err)
		}
		return s, nil
	}
	if r.syslog != nil {
		inner, err := audit.NewSyslog(*r.syslog)
		if err != nil {
			return sinks, fmt.Errorf("audit.syslog: %w", err)
		}
		s, err := spooled("syslog", inner, r.syslogSpool)
		if err != nil {
			return sinks, err
		}
		sinks = append(sinks, s)
	}
	if r.http != nil {
		inner, err := audit.NewHTTP(*r.http)
		if err != nil {
			return sinks, fmt.Errorf("audit.http: %w", err)
		}
		s, err := spooled("http", inner, r.httpSpool)
		if err != nil {
			return sinks, err
		}
		sinks = append(sinks, s)
	}
	if r.xferlog != nil {
		x, err := audit.NewXferlog(*r.xferlog)
		if err != nil {
			return sinks, fmt.Errorf("audit.xferlog: %w", err)
		}
		sinks = append(sinks, x)
	}
	return sinks, nil
}

// warnings lists the remote audit settings that weaken a safe default.
func (r remoteAudit) warnings() []proxy.Warning {
	var ws []proxy.Warning
	add := func(key, text string) { ws = append(ws, proxy.Warning{Key: key, Text: text}) }
	if c := r.syslog; c != nil {
		switch c.Network {
		case "udp":
			add("audit.syslog.network", "audit records go to syslog over UDP, in clear text and without delivery guarantee; long messages are cut")
		case "tcp":
			add("audit.syslog.network", "audit records go to syslog over TCP in clear text, the receiver not authenticated")
		}
		if c.InsecureSkipVerify {
			add("audit.syslog.insecure_skip_verify", "the syslog receiver's certificate is not verified: anyone on the path can read or divert the audit trail")
		}
		if c.Resend < 0 {
			add("audit.syslog.resend_on_reconnect", "records in flight when a syslog connection breaks can be lost")
		}
	}
	if c := r.http; c != nil {
		if c.InsecureSkipVerify {
			add("audit.http.insecure_skip_verify", "the audit collector's certificate is not verified: the token and the records can be intercepted")
		}
		if c.AllowHTTP {
			add("audit.http.allow_http", "the audit collector's token and records cross the network in clear text")
		}
	}
	return ws
}
