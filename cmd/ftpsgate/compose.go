package main

import (
	"context"
	"fmt"
	"net"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/audit"
	"github.com/ftpsgate/ftpsgate/eventlog"
	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/icap"
	"github.com/ftpsgate/ftpsgate/fleet"
	"github.com/ftpsgate/ftpsgate/metrics"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/tunnel"
	"github.com/ftpsgate/ftpsgate/vfs"
)

// composed is the gateway and the collaborators it was given: the
// composition root (compose) builds each of them here, once, and hands
// them to proxy.New, the admin API and the metrics.
type composed struct {
	srv       *proxy.Server
	metrics   *metrics.Metrics
	sink      events.Sink       // every event: metrics (and the log consumer)
	bans      banStore          // this gateway's *policy.Defender, or the fleet's
	admission *policy.Admission // this gateway's counters
	gate      proxy.Admission   // admission: the counters, or the fleet's gate over them
	fleet     *fleet.Store      // nil: no fleet section
	fleetBans *fleet.Bans       // the fleet's bans (the ban cache's size)
	certs     *policy.CertSource
	auth      *authRuntime    // decides logins (auth.mode)
	access    *accessReloader // the access section, swapped on SIGHUP; nil without one
	audit     *audit.Trail    // nil: no audit section
	icap      *icap.Client    // nil: no inspect.icap (at start: a reload may replace it)
	inspect   *inspectHolder  // the inspect section, swapped on SIGHUP
	hub       *tunnel.Hub     // nil: no agents: section
	hubAddr   net.Addr        // where the hub listens (agents.listen, its port resolved)
	path      string          // the configuration file; "": embedded (no SIGHUP reload of the backends)
	agents    *agentsSetup    // the agents: section the hub started with
	log       zerolog.Logger  // for what reloads log besides their result
}

// reloaders are what a SIGHUP reloads besides the certificate.
func (d *composed) reloaders() []keyedReloader {
	rs := []keyedReloader{{"auth.local.users_file", d.auth}}
	if d.access != nil {
		rs = append(rs, keyedReloader{"access", d.access})
	}
	if d.inspect != nil && d.inspect.path != "" {
		rs = append(rs, keyedReloader{"inspect", d.inspect})
	}
	if d.path != "" { // agents first: the backends' vias are checked against its groups
		rs = append(rs, keyedReloader{"agents", &agentsReloader{path: d.path, hub: d.hub, start: d.agents, edgeCert: d.certs.GetCertificate, log: d.log}},
			keyedReloader{"backends", &backendsReloader{path: d.path, srv: d.srv, hub: d.hub, log: d.log}})
	}
	return rs
}

// compose builds the gateway's collaborators from cfg and the gateway
// with them. run and demo both start here.
func compose(ctx context.Context, cfg *loaded, log zerolog.Logger) (*composed, error) {
	pc := cfg.proxy
	if err := pc.Validate(); err != nil {
		return nil, fmt.Errorf("proxy: invalid configuration:\n%w", err)
	}
	d := &composed{metrics: metrics.New(), path: cfg.path, agents: cfg.agents, log: log}
	d.sink = d.metrics
	var err error
	if d.certs, err = proxy.NewCertificates(pc, log); err != nil {
		return nil, err
	}
	if err := d.shared(cfg, log); err != nil {
		return nil, err
	}
	if d.auth, err = newAuthenticator(ctx, cfg.auth, log); err != nil {
		d.closeFleet()
		return nil, err
	}
	opts := []proxy.Option{}
	if d.audit, err = newTrail(cfg.audit, log, d.metrics.AuditDropped); err != nil {
		d.auth.close()
		return nil, err
	}
	if d.audit != nil {
		d.sink = events.Multi{d.metrics, d.audit}
		if cfg.audit.required {
			opts = append(opts, proxy.WithGate(d.audit)) // new sessions wait for a writable trail
		}
	}
	// Findings: metrics, the audit trail and a log line each.
	if d.inspect, err = newInspectHolder(cfg, events.Multi{d.sink, eventlog.New(log)}, log); err != nil {
		d.auth.close()
		closeTrail(d.audit, log)
		return nil, fmt.Errorf("inspect: %w", err)
	} else if d.inspect.needed() {
		pc.Filters = chainFilters(pc.Filters, d.inspect.Filters)
	}
	d.icap = d.inspect.client()
	switch {
	case cfg.access != nil && cfg.path != "":
		d.access = newAccessReloader(cfg.path, cfg)
		opts = append(opts, proxy.WithAccess(d.access.Holder))
	case cfg.access != nil:
		opts = append(opts, proxy.WithAccess(vfs.NewHolder(cfg.access))) // embedded: nothing to reload
	}
	if cfg.agents != nil {
		var topts []proxy.Option
		if d.hub, d.hubAddr, topts, err = startHub(cfg.agents, d.certs.GetCertificate, d.metrics.Registry(), log); err != nil {
			d.auth.close()
			closeTrail(d.audit, log)
			return nil, err
		}
		opts = append(opts, topts...)
	}
	d.srv, err = proxy.New(pc, log, append(opts,
		proxy.WithAuthenticator(d.auth.auth),
		proxy.WithEvents(d.sink),
		proxy.WithBans(d.bans),
		proxy.WithAdmission(d.gate),
		proxy.WithCertificates(d.certs),
	)...)
	if err != nil {
		d.auth.close()
		closeTrail(d.audit, log)
		if d.hub != nil {
			d.hub.Close()
		}
		d.closeFleet()
		return nil, err
	}
	return d, nil
}

// chainFilters is the per-transfer filter hook that runs a's filters, then
// b's; a may be nil.
func chainFilters(a, b func(filter.Meta) []filter.Filter) func(filter.Meta) []filter.Filter {
	if a == nil {
		return b
	}
	return func(m filter.Meta) []filter.Filter { return append(a(m), b(m)...) }
}
