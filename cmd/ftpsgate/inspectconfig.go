package main

import (
	"fmt"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/dlp"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/vfs"
)

// inspectFile is the inspect section: content inspection (package
// filter/dlp for inspect.dlp).
type inspectFile struct {
	DLP struct {
		Enabled    bool         `mapstructure:"enabled"`
		Directions string       `mapstructure:"directions"`
		Cards      ruleFile     `mapstructure:"cards"`
		IBANs      ruleFile     `mapstructure:"ibans"`
		SSNs       ruleFile     `mapstructure:"ssns"`
		Emails     ruleFile     `mapstructure:"emails"`
		Keywords   keywordsFile `mapstructure:"keywords"`
		Patterns   []struct {
			Name      string `mapstructure:"name"`
			Regexp    string `mapstructure:"regexp"`
			Threshold int    `mapstructure:"threshold"`
			Action    string `mapstructure:"action"`
		} `mapstructure:"patterns"`
		PatternsWindow int `mapstructure:"patterns_window"`
		FileTypes      struct {
			Deny   []string `mapstructure:"deny"`
			Action string   `mapstructure:"action"`
		} `mapstructure:"file_types"`
		Gzip struct {
			Enabled  bool   `mapstructure:"enabled"`
			MaxBytes string `mapstructure:"max_bytes"`
			Action   string `mapstructure:"action"`
		} `mapstructure:"gzip"`
		PartialTransfers string `mapstructure:"partial_transfers"`
	} `mapstructure:"dlp"`
	ICAP      icapFile            `mapstructure:"icap"`
	Downloads string              `mapstructure:"downloads"` // holdconfig.go
	Hold      holdFile            `mapstructure:"hold"`
	Policies  []inspectPolicyFile `mapstructure:"policies"` // inspectpolicy.go
}

type ruleFile struct {
	Enabled   bool   `mapstructure:"enabled"`
	Threshold int    `mapstructure:"threshold"`
	Action    string `mapstructure:"action"`
}

type keywordsFile struct {
	ruleFile `mapstructure:",squash"`
	Words    []string `mapstructure:"words"`
}

func init() {
	for k, v := range map[string]any{
		"inspect.dlp.enabled":            false,
		"inspect.dlp.directions":         "uploads",
		"inspect.dlp.cards.enabled":      true,
		"inspect.dlp.cards.threshold":    0,
		"inspect.dlp.cards.action":       "alert",
		"inspect.dlp.ibans.enabled":      true,
		"inspect.dlp.ibans.threshold":    0,
		"inspect.dlp.ibans.action":       "alert",
		"inspect.dlp.ssns.enabled":       true,
		"inspect.dlp.ssns.threshold":     0,
		"inspect.dlp.ssns.action":        "alert",
		"inspect.dlp.emails.enabled":     true,
		"inspect.dlp.emails.threshold":   100,
		"inspect.dlp.emails.action":      "alert",
		"inspect.dlp.keywords.enabled":   false,
		"inspect.dlp.keywords.threshold": 0,
		"inspect.dlp.keywords.action":    "alert",
		"inspect.dlp.keywords.words":     []string{},
		"inspect.dlp.patterns_window":    4096,
		"inspect.dlp.file_types.deny":    []string{},
		"inspect.dlp.file_types.action":  "block",
		"inspect.dlp.gzip.enabled":       true,
		"inspect.dlp.partial_transfers":  "block",
		"inspect.dlp.gzip.max_bytes":     "1GiB",
		"inspect.dlp.gzip.action":        "block",
	} {
		defaults[k] = v
	}
}

// buildInspect checks the inspect section; nil when inspect.dlp is off.
func buildInspect(p *problems, f inspectFile) *dlp.Config { return buildDLP(p, "inspect.dlp", f) }

// buildDLP checks f.DLP, whose keys are under key (inspect.dlp, or a
// policy's dlp); nil when it is off.
func buildDLP(p *problems, key string, f inspectFile) *dlp.Config {
	d := f.DLP
	if !d.Enabled {
		return nil
	}
	c := dlp.Defaults()
	c.Enabled = true
	var err error
	c.Directions, err = dlp.ParseDirections(d.Directions)
	p.add(key+".directions", err)
	action := func(key, s string) dlp.Action {
		a, err := dlp.ParseAction(s)
		p.add(key, err)
		return a
	}
	rule := func(name string, r ruleFile) dlp.Rule {
		return dlp.Rule{Enabled: r.Enabled, Threshold: r.Threshold, Action: action(key+"."+name+".action", r.Action)}
	}
	c.Cards, c.IBANs, c.SSNs, c.Emails = rule("cards", d.Cards), rule("ibans", d.IBANs), rule("ssns", d.SSNs), rule("emails", d.Emails)
	c.Keywords, c.KeywordList = rule("keywords", d.Keywords.ruleFile), d.Keywords.Words
	for i, pt := range d.Patterns {
		c.Patterns = append(c.Patterns, dlp.Pattern{Name: pt.Name, Regexp: pt.Regexp, Threshold: pt.Threshold,
			Action: action(fmt.Sprintf("%s.patterns[%d].action", key, i), pt.Action)})
	}
	c.PatternWindow = d.PatternsWindow
	c.DenyTypes, c.TypeAction = d.FileTypes.Deny, action(key+".file_types.action", d.FileTypes.Action)
	c.Gzip, c.GzipAction = d.Gzip.Enabled, action(key+".gzip.action", d.Gzip.Action)
	c.GzipMaxBytes, err = vfs.ParseSize(d.Gzip.MaxBytes)
	p.add(key+".gzip.max_bytes", err)
	switch d.PartialTransfers {
	case "block":
	case "scan":
		c.ScanPartial = true
	default:
		p.add(key+".partial_transfers", fmt.Errorf("%q is not block or scan", d.PartialTransfers))
	}
	p.addNew(confkey.Under(key, c.Validate()))
	return &c
}

// newInspection compiles the inspect section into the proxy's per-transfer
// filter hook; its findings and scanned bytes go to sink as events.
func newInspection(c *dlp.Config, sink events.Sink) (func(filter.Meta) []filter.Filter, error) {
	if c == nil {
		return nil, nil
	}
	pol, err := dlp.New(*c, nil)
	if err != nil {
		return nil, err
	}
	pol.EmitTo(sink)
	return pol.Hook, nil
}

// inspectWarnings lists the inspect settings that weaken a safe default.
func inspectWarnings(c *dlp.Config) []proxy.Warning {
	if c == nil {
		return nil
	}
	var ws []proxy.Warning
	if !c.Gzip {
		ws = append(ws, proxy.Warning{Key: "inspect.dlp.gzip.enabled", Text: "gzip-compressed uploads are not decompressed: their content is not inspected"})
	} else if c.GzipAction != dlp.Block {
		ws = append(ws, proxy.Warning{Key: "inspect.dlp.gzip.action", Text: "uploads that do not decompress or pass gzip.max_bytes go through uninspected"})
	}
	if c.ScanPartial {
		ws = append(ws, proxy.Warning{Key: "inspect.dlp.partial_transfers", Text: "resumed and appended transfers are inspected only in part: a file sent in parts passes thresholds no part passes alone"})
	}
	if len(c.DenyTypes) > 0 && c.TypeAction != dlp.Block {
		ws = append(ws, proxy.Warning{Key: "inspect.dlp.file_types.action", Text: "denied file types are only reported, not refused"})
	}
	return ws
}
