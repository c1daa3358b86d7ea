package main

import (
	"context"
	"io"
	"net/netip"
	"os"
	"slices"
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
// file is good (certificate files and CA file included), puts in force its
// allow list, log.level, cert_file/key_file, gateway_pins,
// gateway_ca_file/gateway_server_name (the next connection to a gateway),
// max_streams, dial_timeout and source_address (the next streams):
// tunnel.Agent.SetConfig. The tunnel up stays, unless its gateway no
// longer passes the new gateway_pins or CA: then it is cut. A file with a
// problem changes nothing and is logged with the keys at fault. The other
// keys take effect at the next start: a line names those the file changed.
// One line tells the result (plus a warning line per weakened setting of
// the new file).
func reloadAgent(path string, ag *tunnel.Agent, level *levelGate, m *tunnel.AgentMetrics, log zerolog.Logger) {
	l, err := loadAgent(path)
	if err != nil {
		m.Reloaded(false)
		var keys []string
		for _, e := range confkey.List(err) {
			keys = append(keys, e.Key)
		}
		log.Error().Err(err).Strs("keys", keys).Int("allow_rules", len(ag.Allow())).
			Msg("agent configuration reload failed: the settings in force stay")
		return
	}
	for _, w := range l.warnings() {
		log.Warn().Str("key", w.Key).Msg("weakened setting: " + w.String())
	}
	if len(l.agent.Allow) == 0 {
		log.Warn().Str("key", "allow").Msg("the reloaded allow list is empty: every stream will be refused")
	}
	if keys := restartKeys(ag.Config(), l.agent); len(keys) > 0 {
		log.Warn().Strs("keys", keys).Msg("agent configuration reload: these keys changed but take effect at the next start")
	}
	cut := ag.SetConfig(l.agent) // logged by the agent
	level.set(l.log.Level)
	m.Reloaded(true)
	c := l.agent
	log.Info().Strs("allow", allowStrings(c.Allow)).Str("log_level", level.level().String()).
		Int("max_streams", c.MaxStreams).Dur("dial_timeout", c.DialTimeout).Str("source_address", sourceString(c.Source)).
		Int("gateway_pins", len(c.GatewayPins)).Bool("gateway_ca", c.GatewayCA != nil).Bool("tunnel_cut", cut != nil).
		Msg("agent configuration reloaded: the next streams and the next connection to a gateway use it (other keys take effect at restart)")
}

// restartKeys names the keys of agent.yaml that differ between was and now
// but that only a restart applies (admin and log.format are not compared:
// they are not in tunnel.AgentConfig).
func restartKeys(was, now tunnel.AgentConfig) []string {
	var keys []string
	for _, k := range []struct {
		key  string
		same bool
	}{
		{"gateways", slices.Equal(was.Gateways, now.Gateways)},
		{"group", was.Group == now.Group},
		{"name", was.Name == now.Name || (now.Name == "" && was.Name == "agent")},
		{"handshake_timeout", was.HandshakeTimeout == now.HandshakeTimeout},
		{"keepalive", was.KeepAlive == now.KeepAlive},
		{"backoff", was.BackoffMin == now.BackoffMin && was.BackoffMax == now.BackoffMax},
		{"shutdown_grace", was.ShutdownGrace == now.ShutdownGrace},
	} {
		if !k.same {
			keys = append(keys, k.key)
		}
	}
	return keys
}

func sourceString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
