package main

import (
	"fmt"
	"strings"

	"github.com/ftpsgate/ftpsgate/filter/dlp"
	"github.com/ftpsgate/ftpsgate/filter/icap"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/proxy/hold"
	"github.com/ftpsgate/ftpsgate/vfs"
)

// holdFile is inspect.hold: the bounds of a held download
// (inspect.downloads: hold; package proxy/hold).
type holdFile struct {
	MaxBytes    string `mapstructure:"max_bytes"`
	MemoryBytes string `mapstructure:"memory_bytes"`
	Dir         string `mapstructure:"dir"`
}

func init() {
	for k, v := range map[string]any{
		"inspect.downloads":         "stream",
		"inspect.hold.max_bytes":    "1GiB",
		"inspect.hold.memory_bytes": "8MiB",
		"inspect.hold.dir":          "",
	} {
		defaults[k] = v
	}
}

// buildHold checks inspect.downloads and inspect.hold: whether downloads
// that a filter inspects are held until their verdict, and the hold's
// bounds.
func buildHold(p *problems, f inspectFile) (bool, hold.Config) {
	var on bool
	switch strings.ToLower(strings.TrimSpace(f.Downloads)) {
	case "", "stream":
	case "hold":
		on = true
	default:
		p.add("inspect.downloads", fmt.Errorf("%q is not a download inspection mode (want stream or hold)", f.Downloads))
	}
	var c hold.Config
	var err error
	c.MaxBytes, err = vfs.ParseSize(f.Hold.MaxBytes)
	p.add("inspect.hold.max_bytes", err)
	c.MemoryBytes, err = vfs.ParseSize(f.Hold.MemoryBytes)
	p.add("inspect.hold.memory_bytes", err)
	c.Dir = f.Hold.Dir
	if on {
		p.addNew(confkey.Under("inspect.hold", c.Validate()))
	}
	return on, c
}

// holdWarnings: inspect.downloads: hold does nothing when the default
// inspection (inspect.dlp, inspect.icap) inspects no download.
func holdWarnings(hold bool, d *dlp.Config, c *icap.Config) []proxy.Warning {
	if !hold {
		return nil
	}
	if d != nil && d.Directions != dlp.Uploads {
		return nil
	}
	if c != nil && c.Directions != icap.Uploads {
		return nil
	}
	return []proxy.Warning{{Key: "inspect.downloads", Text: "hold, but neither inspect.dlp nor inspect.icap inspects downloads: downloads are streamed uninspected (unless an inspect.policies entry inspects them)"}}
}
