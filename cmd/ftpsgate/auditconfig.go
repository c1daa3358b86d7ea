package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/audit"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/vfs"
)

// auditFile is the audit section: the audit trail (package audit) and its
// sinks.
type auditFile struct {
	File struct {
		Path               string `mapstructure:"path"`
		MaxSize            string `mapstructure:"max_size"`
		MaxAge             string `mapstructure:"max_age"`
		Keep               int    `mapstructure:"keep"`
		KeepFor            string `mapstructure:"keep_for"`
		CheckpointKeyFile  string `mapstructure:"checkpoint_key_file"`
		CheckpointInterval string `mapstructure:"checkpoint_interval"`
	} `mapstructure:"file"`
	// The remote sinks: audit.syslog, audit.http, audit.xferlog.
	remoteAuditFile `mapstructure:",squash"`
	Required        bool   `mapstructure:"required"`
	Queue           int    `mapstructure:"queue"`
	Instance        string `mapstructure:"instance"`
}

func init() {
	for k, v := range map[string]any{
		"audit.file.path":                "",
		"audit.file.max_size":            "100MiB",
		"audit.file.max_age":             "24h",
		"audit.file.keep":                audit.DefaultKeep,
		"audit.file.keep_for":            "0s",
		"audit.file.checkpoint_key_file": "",
		"audit.file.checkpoint_interval": "5m",
		"audit.required":                 false,
		"audit.queue":                    audit.DefaultQueue,
		"audit.instance":                 "",
	} {
		defaults[k] = v
	}
}

// auditSetup is the checked audit section.
type auditSetup struct {
	file     *audit.FileConfig // nil: no file sink
	remote   remoteAudit
	required bool
	trail    audit.TrailConfig
}

// enabled says whether there is an audit trail at all.
func (a *auditSetup) enabled() bool { return a != nil && (a.file != nil || a.remote.any()) }

// buildAudit checks the audit section.
func buildAudit(p *problems, f auditFile) *auditSetup {
	a := &auditSetup{required: f.Required, trail: audit.TrailConfig{Queue: f.Queue, Instance: f.Instance}}
	if f.Queue < 0 {
		p.add("audit.queue", errors.New("must not be negative"))
	}
	dur := func(key, s string) time.Duration {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err == nil && d < 0 {
			err = errors.New("must not be negative")
		}
		p.add(key, err)
		return d
	}
	ff := f.File
	if ff.Path == "" {
		if ff.CheckpointKeyFile != "" {
			p.add("audit.file.checkpoint_key_file", errors.New("needs audit.file.path"))
		}
	} else {
		fc := &audit.FileConfig{Path: ff.Path, Keep: ff.Keep, Instance: f.Instance,
			MaxAge:             dur("audit.file.max_age", ff.MaxAge),
			KeepFor:            dur("audit.file.keep_for", ff.KeepFor),
			CheckpointInterval: dur("audit.file.checkpoint_interval", ff.CheckpointInterval),
		}
		var err error
		fc.MaxSize, err = vfs.ParseSize(ff.MaxSize)
		p.add("audit.file.max_size", err)
		if ff.CheckpointKeyFile != "" {
			fc.CheckpointKey, err = audit.LoadPrivateKey(ff.CheckpointKeyFile)
			p.add("audit.file.checkpoint_key_file", err)
		}
		p.addNew(confkey.Under("audit.file", fc.Validate()))
		a.file = fc
	}
	a.remote = buildRemoteAudit(p, f.remoteAuditFile)
	if a.required && !a.enabled() {
		p.add("audit.required", errors.New("no audit sink is configured (audit.file.path, audit.syslog.address, audit.http.url, audit.xferlog.path)"))
	}
	return a
}

// newTrail opens the configured sinks and starts the trail; nil when
// there is no audit section.
func newTrail(a *auditSetup, log zerolog.Logger, dropped func(sink string)) (*audit.Trail, error) {
	if !a.enabled() {
		return nil, nil
	}
	var sinks []audit.Sink
	if a.file != nil {
		f, err := audit.OpenFile(*a.file)
		if err != nil {
			return nil, fmt.Errorf("audit.file: %w", err)
		}
		sinks = append(sinks, f)
	}
	remote, err := openRemoteAudit(a.remote, log)
	if err != nil {
		for _, s := range sinks {
			_ = s.Close()
		}
		return nil, err
	}
	sinks = append(sinks, remote...)
	cfg := a.trail
	cfg.Log = log.With().Str("component", "audit").Logger()
	cfg.Dropped = dropped
	return audit.NewTrail(cfg, sinks...), nil
}

// closeTrail delivers what is queued, for up to 10 s, and closes the sinks.
func closeTrail(t *audit.Trail, log zerolog.Logger) {
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := t.Close(ctx); err != nil {
		log.Error().Err(err).Msg("audit trail closed with records lost")
	}
}

// hashMode reads transfers.hash: "auto" (the default) hashes uploads, and
// downloads too when an audit trail records the transfers, so that every
// transfer record carries the SHA-256 of what passed.
func hashMode(s string, audited bool) (proxy.HashMode, error) {
	if strings.EqualFold(strings.TrimSpace(s), "auto") {
		if audited {
			return proxy.HashAll, nil
		}
		return proxy.HashUploads, nil
	}
	return proxy.ParseHashMode(s)
}
