package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Format writes a record as one grep-friendly line: the time, the kind,
// then key=value pairs (the record's ID, the session's fields, then the
// kind's fields, sorted; nested ones dotted). Values with a space, a quote
// or an equals sign are quoted as Go strings; the chain fields (prev, seq)
// are left out.
func Format(r Record) string {
	var b strings.Builder
	b.WriteString(r.Time.UTC().Format(time.RFC3339Nano))
	b.WriteString(" ")
	b.WriteString(r.Kind)
	pair := func(k, v string) {
		if v == "" {
			return
		}
		b.WriteString(" ")
		b.WriteString(k)
		b.WriteString("=")
		if strings.ContainsAny(v, " \"=\t\n\\") || !strconv.CanBackquote(v) {
			v = strconv.Quote(v)
		}
		b.WriteString(v)
	}
	pair("id", r.ID)
	pair("session", r.Session)
	pair("listener", r.Listener)
	pair("client", r.Client)
	pair("balancer", r.Balancer)
	pair("user", r.User)
	pair("host", r.Host)
	var part any
	for _, p := range []any{r.SessionStart, r.SessionEnd, r.Login, r.Command, r.Transfer, r.DataRefused, r.Ban, r.Reload, r.Certificate, r.Audit} {
		if p != nil && !isNilPtr(p) {
			part = p
			break
		}
	}
	if part != nil {
		raw, _ := json.Marshal(part)
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		_ = d.Decode(&m)
		flat := map[string]string{}
		flatten("", m, flat)
		keys := make([]string, 0, len(flat))
		for k := range flat {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			pair(k, flat[k])
		}
	}
	return b.String()
}

func isNilPtr(p any) bool {
	switch p := p.(type) {
	case *SessionStart:
		return p == nil
	case *SessionEnd:
		return p == nil
	case *Login:
		return p == nil
	case *Command:
		return p == nil
	case *Transfer:
		return p == nil
	case *DataRefused:
		return p == nil
	case *Ban:
		return p == nil
	case *Reload:
		return p == nil
	case *Certificate:
		return p == nil
	case *Self:
		return p == nil
	}
	return true
}

func flatten(prefix string, v any, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if prefix != "" {
				k = prefix + "." + k
			}
			flatten(k, x, out)
		}
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = fmt.Sprint(x)
		}
		out[prefix] = strings.Join(parts, ",")
	case nil:
	default:
		out[prefix] = fmt.Sprint(v)
	}
}
