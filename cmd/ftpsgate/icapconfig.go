package main

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/icap"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/vfs"
)

// icapFile is inspect.icap: antivirus and DLP scanning by ICAP servers
// (package filter/icap).
type icapFile struct {
	Servers            []string `mapstructure:"servers"`
	Timeout            string   `mapstructure:"timeout"`
	Preview            string   `mapstructure:"preview"`
	MaxSize            string   `mapstructure:"max_size"`
	OverMaxSize        string   `mapstructure:"over_max_size"`
	OnError            string   `mapstructure:"on_error"`
	Directions         string   `mapstructure:"directions"`
	PartialTransfers   string   `mapstructure:"partial_transfers"`
	MaxIdleConnections int      `mapstructure:"max_idle_connections"`
}

func init() {
	for k, v := range map[string]any{
		"inspect.icap.servers":              []string{},
		"inspect.icap.timeout":              "30s",
		"inspect.icap.preview":              "auto",
		"inspect.icap.max_size":             "100MiB",
		"inspect.icap.over_max_size":        "on_error",
		"inspect.icap.on_error":             "block",
		"inspect.icap.directions":           "both",
		"inspect.icap.partial_transfers":    "block",
		"inspect.icap.max_idle_connections": 4,
	} {
		defaults[k] = v
	}
}

// buildICAP checks inspect.icap; nil when no server is configured.
func buildICAP(p *problems, f icapFile) *icap.Config {
	if len(f.Servers) == 0 {
		return nil
	}
	const key = "inspect.icap"
	c := &icap.Config{MaxIdle: f.MaxIdleConnections, Timeout: optDuration(p, key+".timeout", f.Timeout)}
	for i, s := range f.Servers {
		srv, err := icap.ParseServer(s)
		p.add(fmt.Sprintf("%s.servers[%d]", key, i), err)
		c.Servers = append(c.Servers, srv)
	}
	var err error
	c.Preview, err = icap.ParsePreview(f.Preview)
	p.add(key+".preview", err)
	c.MaxSize, err = vfs.ParseSize(f.MaxSize)
	p.add(key+".max_size", err)
	c.OverMaxSize, err = icap.ParseAction(f.OverMaxSize, true)
	p.add(key+".over_max_size", err)
	c.OnError, err = icap.ParseAction(f.OnError, false)
	p.add(key+".on_error", err)
	c.Directions, err = icap.ParseDirections(f.Directions)
	p.add(key+".directions", err)
	c.Partial, err = icap.ParsePartialMode(f.PartialTransfers)
	p.add(key+".partial_transfers", err)
	p.addNew(confkey.Under(key, c.Validate()))
	return c
}

// newICAP opens the ICAP client; its verdicts go to sink as inspection
// events (blocks and failures; clean scans are counted only as scanned
// bytes) and its server failures to the log.
func newICAP(c *icap.Config, sink events.Sink, log zerolog.Logger) (*icap.Client, error) {
	if c == nil {
		return nil, nil
	}
	l := log.With().Str("component", "icap").Logger()
	cfg := *c
	cfg.Hooks = icap.Hooks{
		Done: func(r icap.Report) {
			s := events.Session{ID: r.Session, User: r.User}
			up := r.Direction == filter.Upload
			sink.Emit(events.Inspected{Session: s, Upload: up, Bytes: r.Bytes})
			switch r.Outcome {
			case icap.Blocked:
				sink.Emit(events.Inspection{Session: s, Path: r.Path, Upload: up, Detector: "icap:" + r.Threat, Count: 1, Action: "block", Ref: r.Ref})
			case icap.Failed, icap.Skipped:
				ev := l.Warn().Str("session", r.Session).Str("path", r.Path).Str("ref", r.Ref).Str("outcome", r.Outcome.String())
				ev.AnErr("error", r.Err).Msg("ICAP scan did not give a verdict")
			}
		},
		ServerError: func(server string, err error) {
			l.Error().Err(err).Str("server", server).Msg("ICAP server unusable: trying the next one")
		},
	}
	return icap.New(cfg)
}

// icapWarnings lists the inspect.icap settings that weaken it.
func icapWarnings(c *icap.Config) []proxy.Warning {
	if c == nil {
		return nil
	}
	var ws []proxy.Warning
	if c.OnError == icap.Allow {
		ws = append(ws, proxy.Warning{Key: "inspect.icap.on_error", Text: "a transfer passes unscanned when the ICAP scanner is unreachable or fails"})
	}
	if c.OverMaxSize == icap.Allow || ((c.OverMaxSize == icap.Default || c.OverMaxSize == icap.OnError) && c.OnError == icap.Allow) {
		ws = append(ws, proxy.Warning{Key: "inspect.icap.over_max_size", Text: "files larger than max_size pass unscanned"})
	}
	if c.Partial == icap.PartialScan {
		ws = append(ws, proxy.Warning{Key: "inspect.icap.partial_transfers", Text: "resumed and appended transfers are scanned only in part: a file split across them is never scanned whole"})
	}
	if c.Directions != icap.Both {
		ws = append(ws, proxy.Warning{Key: "inspect.icap.directions", Text: "transfers in the other direction are not scanned"})
	}
	return ws
}
