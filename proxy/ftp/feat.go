package ftp

import "strings"

// ParseFeatures returns the features of a FEAT reply (RFC 2389 section
// 3.2): the middle lines of a 211 multi-line reply, trimmed, with empty
// ones dropped. A "211-" some servers put before each feature is removed.
// A single-line reply ("211 no features") or a reply with another code
// gives nil.
func ParseFeatures(r Reply) []string {
	if r.Code != StatusSystemStatus || len(r.Lines) < 3 {
		return nil
	}
	var features []string
	for _, l := range r.Lines[1 : len(r.Lines)-1] {
		l = strings.TrimPrefix(l, "211-")
		if l = strings.TrimSpace(l); l != "" {
			features = append(features, l)
		}
	}
	return features
}

// FeatureReply returns the 211 reply to FEAT listing features (RFC 2389
// section 3.2): "Features:", then each feature on a line of its own after
// one space, then "End". Features are trimmed; empty ones are left out. If
// none are left, the reply is the single line "211 No features".
func FeatureReply(features []string) Reply {
	lines := make([]string, 0, len(features)+2)
	lines = append(lines, "Features:")
	for _, f := range features {
		if f = strings.TrimSpace(f); f != "" {
			lines = append(lines, " "+f)
		}
	}
	if len(lines) == 1 {
		return NewReply(StatusSystemStatus, "No features")
	}
	return Reply{Code: StatusSystemStatus, Lines: append(lines, "End")}
}

// FeatureName returns the name of a feature line, upper-cased: its first
// word. "REST STREAM" gives "REST", "mlst type*;size*;" gives "MLST".
func FeatureName(feature string) string {
	name := strings.TrimSpace(feature)
	if i := strings.IndexAny(name, " \t"); i >= 0 {
		name = name[:i]
	}
	return strings.ToUpper(name)
}
