package main

import (
	"context"
	"io"
	"os"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/tunnel"
)

// levelGate is the agent's log writer with a level a reload can change:
// lines below it are dropped.
type levelGate struct {
	w   io.Writer
	min atomic.Int32
}

func newLevelGate(c logConfig, out *os.File) *levelGate {
	g := &levelGate{w: logWriter(c, out)}
	g.set(c.Level)
	return g
}

// set applies a log.level value (checked by loadAgent; unknown: info).
func (g *levelGate) set(s string) {
	l, err := parseLevel(s)
	if err != nil {
		l = zerolog.InfoLevel
	}
	g.min.Store(int32(l))
}

func (g *levelGate) level() zerolog.Level { return zerolog.Level(g.min.Load()) }

// logger is a logger writing through g (its own level is debug: g decides).
func (g *levelGate) logger() zerolog.Logger {
	return zerolog.New(g).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}

func (g *levelGate) Write(p []byte) (int, error) { return g.w.Write(p) }

// WriteLevel is zerolog.LevelWriter's: it drops lines below the level.
func (g *levelGate) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l < g.level() && l != zerolog.NoLevel {
		return len(p), nil
	}
	return g.w.Write(p)
}

// reloadAgentOnHUP reloads path on each SIGHUP until ctx ends.
func reloadAgentOnHUP(ctx context.Context, path string, ag *tunnel.Agent, level *levelGate, m *tunnel.AgentMetrics, log zerolog.Logger) {
	onHUP(ctx, func() { reloadAgent(path, ag, level, m, log) })
}

// reloadAgent is one SIGHUP: it reads agent.yaml again and, when the whole
// file is good, puts its allow list and log.level in force (the streams
// that follow are judged by the new list; those relaying go on). A file
// with a problem changes nothing and is logged with the keys at fault.
// The other keys take effect at the next start. One line tells the result
// (plus a warning line per weakened setting of the new file).
func reloadAgent(path string, ag *tunnel.Agent, level *levelGate, m *tunnel.AgentMetrics, log zerolog.Logger) {
	l, err := loadAgent(path)
	if err != nil {
		m.Reloaded(false)
		var keys []string
		for _, e := range confkey.List(err) {
			keys = append(keys, e.Key)
		}
		log.Error().Err(err).Strs("keys", keys).Int("allow_rules", len(ag.Allow())).
			Msg("agent configuration reload failed: the allow list and log level in force stay")
		return
	}
	for _, w := range l.warnings() {
		log.Warn().Str("key", w.Key).Msg("weakened setting: " + w.String())
	}
	if len(l.agent.Allow) == 0 {
		log.Warn().Str("key", "allow").Msg("the reloaded allow list is empty: every stream will be refused")
	}
	ag.SetAllow(l.agent.Allow)
	level.set(l.log.Level)
	m.Reloaded(true)
	log.Info().Strs("allow", allowStrings(l.agent.Allow)).Str("log_level", level.level().String()).
		Msg("agent configuration reloaded: the new allow list judges the next streams (other keys take effect at restart)")
}
