package main

import (
	"fmt"
	"syscall"

	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
)

// descriptorLimit is the process's RLIMIT_NOFILE (soft limit; Go raises it
// to the hard limit at start-up).
func descriptorLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("getrlimit RLIMIT_NOFILE: %w", err)
	}
	return rl.Cur, nil
}

// sessionBudget sets limits.max_sessions from the descriptor limit when the
// configuration leaves it at 0, so that the gateway refuses sessions with
// 421 long before accept fails for want of descriptors. It returns a
// warning when an explicit value is above what the descriptors allow, and
// a note for the start-up log.
func sessionBudget(c *proxy.Config, nofile uint64) (note string, warn *proxy.Warning) {
	budget := policy.SessionBudget(nofile, c.Passive.Ports.Size())
	if c.Limits.MaxSessions == 0 {
		c.Limits.MaxSessions = budget
		return fmt.Sprintf("limits.max_sessions: %d, derived from the descriptor limit %d", budget, nofile), nil
	}
	if c.Limits.MaxSessions > budget {
		return "", &proxy.Warning{Key: "limits.max_sessions", Text: fmt.Sprintf(
			"%d is above the %d sessions that the descriptor limit %d allows: clients may meet failed accepts instead of 421",
			c.Limits.MaxSessions, budget, nofile)}
	}
	return "", nil
}

// warnings are the settings of cfg that weaken a safe default, with the
// descriptor budget applied.
func warnings(cfg *loaded, nofile uint64) (note string, ws []proxy.Warning) {
	note, w := sessionBudget(&cfg.proxy, nofile)
	ws = append(cfg.proxy.Warnings(), cfg.auth.warnings()...)
	if cfg.audit != nil {
		ws = append(ws, cfg.audit.remote.warnings()...)
	}
	ws = append(ws, inspectWarnings(cfg.inspect)...)
	ws = append(ws, icapWarnings(cfg.icap)...)
	ws = append(ws, fleetWarnings(cfg.shared)...)
	ws = append(ws, holdWarnings(cfg.proxy.HoldDownloads, cfg.inspect, cfg.icap)...)
	ws = append(ws, inspectPolicyWarnings(cfg.inspect, cfg.icap, cfg.inspectPolicies)...)
	ws = append(ws, cfg.agents.warnings()...)
	if w != nil {
		ws = append(ws, *w)
	}
	return note, ws
}
