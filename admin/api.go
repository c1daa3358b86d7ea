package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ftpsgate/ftpsgate/policy"
)

// SessionInfo describes one live session.
type SessionInfo struct {
	ID        string    `json:"id"`
	Client    string    `json:"client"` // the client's address (the PROXY protocol's, when on)
	User      string    `json:"user"`   // empty before USER
	Listener  string    `json:"listener"`
	Backend   string    `json:"backend,omitempty"` // the backend it holds now; none before login
	Started   time.Time `json:"started"`
	BytesUp   int64     `json:"bytes_up"`   // data received from the client
	BytesDown int64     `json:"bytes_down"` // data sent to the client
}

// Sessions lists the live sessions; the proxy implements it. It is called
// from HTTP handlers, concurrently with the sessions.
type Sessions interface {
	Sessions() []SessionInfo
}

// BanRequest is the body of POST /v1/bans.
type BanRequest struct {
	IP       string `json:"ip"`
	Duration string `json:"duration,omitempty"` // a Go duration; empty or "0": the configured bans.duration
	Reason   string `json:"reason,omitempty"`   // empty: "admin"
}

// The bodies of the list answers and of errors.
type (
	bansBody struct {
		Bans []policy.Ban `json:"bans"`
	}
	sessionsBody struct {
		Sessions []SessionInfo `json:"sessions"`
	}
	errorBody struct {
		Error string `json:"error"`
	}
)

const (
	maxBodySize   = 64 << 10
	maxReasonLen  = 256
	maxBan        = 10 * 365 * 24 * time.Hour
	defaultReason = "admin"
)

// banOrder is a parsed, checked BanRequest.
type banOrder struct {
	ip     netip.Addr
	dur    time.Duration // 0: the Defender's default
	reason string
}

// parseBanRequest decodes and checks a POST /v1/bans body: exactly one JSON
// object with known fields, a valid address, a duration from 0 to 10 years,
// a reason of at most 256 bytes of printable UTF-8.
func parseBanRequest(r io.Reader) (banOrder, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBodySize+1))
	if err != nil {
		return banOrder{}, fmt.Errorf("body: %w", err)
	}
	if len(data) > maxBodySize {
		return banOrder{}, fmt.Errorf("body: larger than %d bytes", maxBodySize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var req BanRequest
	if err := dec.Decode(&req); err != nil {
		return banOrder{}, fmt.Errorf("body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return banOrder{}, errors.New("body: one JSON object expected")
	}
	return req.check()
}

func (req BanRequest) check() (banOrder, error) {
	ip, err := netip.ParseAddr(req.IP)
	if err != nil {
		return banOrder{}, fmt.Errorf("ip: %q is not an IP address", req.IP)
	}
	o := banOrder{ip: ip.Unmap().WithZone(""), reason: req.Reason}
	if req.Duration != "" {
		o.dur, err = time.ParseDuration(req.Duration)
		if err != nil {
			return banOrder{}, fmt.Errorf("duration: %q is not a duration (e.g. 90m, 24h)", req.Duration)
		}
		if o.dur < 0 || o.dur > maxBan {
			return banOrder{}, fmt.Errorf("duration: %s is not between 0 and %s", o.dur, maxBan)
		}
	}
	if err := checkReason(o.reason); err != nil {
		return banOrder{}, err
	}
	if o.reason == "" {
		o.reason = defaultReason
	}
	return o, nil
}

func checkReason(s string) error {
	if len(s) > maxReasonLen {
		return fmt.Errorf("reason: longer than %d bytes", maxReasonLen)
	}
	if !utf8.ValidString(s) {
		return errors.New("reason: not UTF-8")
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("reason: contains the unprintable %U", r)
		}
	}
	return nil
}

// encodeJSON encodes v as one line of JSON, or an error body.
func encodeJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		fmt.Fprintf(&buf, "{\"error\":%q}\n", "encoding the answer: "+err.Error())
	}
	return buf.Bytes()
}
