package dlp

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Action is what a finding does to its transfer.
type Action int

// The actions. The zero value alerts.
const (
	Alert Action = iota // report it; the transfer goes on
	Block               // report it and refuse the transfer
)

// ParseAction parses "alert" or "block".
func ParseAction(s string) (Action, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "alert", "":
		return Alert, nil
	case "block":
		return Block, nil
	}
	return 0, fmt.Errorf("%q is not an action (want alert or block)", s)
}

func (a Action) String() string {
	if a == Block {
		return "block"
	}
	return "alert"
}

// Directions says which transfers are inspected.
type Directions int

// The directions. The zero value inspects uploads.
const (
	Uploads Directions = iota
	Downloads
	Both
)

// ParseDirections parses "uploads", "downloads" or "both".
func ParseDirections(s string) (Directions, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "uploads", "":
		return Uploads, nil
	case "downloads":
		return Downloads, nil
	case "both":
		return Both, nil
	}
	return 0, fmt.Errorf("%q is not a direction (want uploads, downloads or both)", s)
}

func (d Directions) String() string {
	switch d {
	case Downloads:
		return "downloads"
	case Both:
		return "both"
	}
	return "uploads"
}

// Rule is one detector's setting: on or off, the count a transfer may hold
// (a finding is a count above Threshold) and the action of a finding.
type Rule struct {
	Enabled   bool
	Threshold int
	Action    Action
}

// Pattern is a custom regular expression (Go syntax, RE2).
type Pattern struct {
	Name      string
	Regexp    string
	Threshold int
	Action    Action
}

// Config is the inspect.dlp section.
type Config struct {
	Enabled    bool
	Directions Directions
	Cards      Rule
	IBANs      Rule
	SSNs       Rule
	Emails     Rule
	// Keywords are matched case-insensitively (ASCII) anywhere.
	Keywords      Rule
	KeywordList   []string
	Patterns      []Pattern
	PatternWindow int // the bytes a pattern sees at once (a line, cut at this size)
	// DenyTypes are the file types refused by their magic bytes: elf, pe,
	// macho, zip, rar, 7z, gzip, tar, or the groups executable and archive.
	DenyTypes  []string
	TypeAction Action
	// Gzip: a gzip-compressed upload is inspected decompressed, up to
	// GzipMaxBytes decompressed bytes; past them, or when the stream does
	// not decompress, the "gzip" finding with GzipAction.
	Gzip         bool
	GzipMaxBytes int64
	GzipAction   Action
	// ScanPartial: a resumed (REST) or appended (APPE) transfer in an
	// inspected direction is scanned from its offset, as if the part were
	// the file. False (the default): such a transfer is refused at its
	// first byte when a rule blocks, since a file sent in parts would pass
	// thresholds and patterns no part passes alone. With alerting rules
	// only, it is scanned either way.
	ScanPartial bool
}

// Defaults: off; when on, uploads, the card, IBAN and SSN detectors on at
// any count and emails above 100, all alerting; gzip inspected up to 1 GiB,
// blocked past it.
func Defaults() Config {
	return Config{
		Cards: Rule{Enabled: true}, IBANs: Rule{Enabled: true}, SSNs: Rule{Enabled: true},
		Emails: Rule{Enabled: true, Threshold: 100}, PatternWindow: 4096,
		Gzip: true, GzipMaxBytes: 1 << 30, GzipAction: Block, TypeAction: Block,
	}
}

// The bounds Validate enforces.
const (
	maxPatternWindow = 64 << 10
	maxPatterns      = 64
)

var typeGroups = map[string][]string{
	"executable": {"elf", "pe", "macho"},
	"archive":    {"zip", "rar", "7z", "gzip", "tar"},
}

var knownTypes = map[string]bool{"elf": true, "pe": true, "macho": true, "zip": true, "rar": true, "7z": true, "gzip": true, "tar": true}

// Validate names the keys (relative to inspect.dlp) of the problems.
func (c Config) Validate() error {
	var errs []error
	for _, r := range c.rules() {
		if r.Threshold < 0 {
			errs = append(errs, confkey.Errorf(r.name+".threshold", "must not be negative"))
		}
	}
	if c.Keywords.Enabled && len(c.KeywordList) == 0 {
		errs = append(errs, confkey.Errorf("keywords.words", "must name at least one word when keywords are enabled"))
	}
	for i, w := range c.KeywordList {
		if strings.TrimSpace(w) == "" {
			errs = append(errs, confkey.Errorf(fmt.Sprintf("keywords.words[%d]", i), "must not be empty"))
		}
	}
	if n := keywordStates(c.KeywordList); n > maxKeywordStates {
		errs = append(errs, confkey.Errorf("keywords.words", "too long: %d bytes in all (at most %d)", n-1, maxKeywordStates-1))
	}
	if len(c.Patterns) > maxPatterns {
		errs = append(errs, confkey.Errorf("patterns", "at most %d patterns", maxPatterns))
	}
	names := map[string]bool{}
	for i, p := range c.Patterns {
		key := fmt.Sprintf("patterns[%d]", i)
		if p.Name == "" {
			errs = append(errs, confkey.Errorf(key+".name", "must be set"))
		} else if names[p.Name] {
			errs = append(errs, confkey.Errorf(key+".name", "%q is used twice", p.Name))
		}
		names[p.Name] = true
		if _, err := regexp.Compile(p.Regexp); err != nil || p.Regexp == "" {
			if err == nil {
				err = errors.New("must be set")
			}
			errs = append(errs, confkey.New(key+".regexp", err))
		}
		if p.Threshold < 0 {
			errs = append(errs, confkey.Errorf(key+".threshold", "must not be negative"))
		}
	}
	if c.PatternWindow < 256 || c.PatternWindow > maxPatternWindow {
		errs = append(errs, confkey.Errorf("patterns_window", "must be from 256 to %d bytes", maxPatternWindow))
	}
	for i, t := range c.DenyTypes {
		t = strings.ToLower(t)
		if !knownTypes[t] && typeGroups[t] == nil {
			errs = append(errs, confkey.Errorf(fmt.Sprintf("file_types.deny[%d]", i), "%q is not a known type (elf, pe, macho, zip, rar, 7z, gzip, tar, executable, archive)", t))
		}
	}
	if c.Gzip && c.GzipMaxBytes <= 0 {
		errs = append(errs, confkey.Errorf("gzip.max_bytes", "must be positive"))
	}
	return errors.Join(errs...)
}

type namedRule struct {
	name string
	Rule
	count func(*Counts) int
}

// rules are the counting detectors' rules, in report order.
func (c Config) rules() []namedRule {
	return []namedRule{
		{"cards", c.Cards, func(n *Counts) int { return n.Cards }},
		{"ibans", c.IBANs, func(n *Counts) int { return n.IBANs }},
		{"ssns", c.SSNs, func(n *Counts) int { return n.SSNs }},
		{"emails", c.Emails, func(n *Counts) int { return n.Emails }},
		{"keywords", c.Keywords, func(n *Counts) int { return n.Keywords }},
	}
}
