package local

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Policy is the password policy for local users. Its keys, as Validate
// names them, are min_length, min_classes, history, max_age and
// warn_before.
type Policy struct {
	// MinLength is the shortest password accepted, in characters
	// (min_length, default 12).
	MinLength int
	// MinClasses is how many of the classes lower case, upper case, digit
	// and other a password must draw from (min_classes, 0..4, default 3).
	MinClasses int
	// History: a new password may not equal the current one nor any of
	// the History before it (history, default 5; 0 turns the check off).
	History int
	// MaxAge is how long a password is valid after it was set (max_age,
	// default 0: it never expires).
	MaxAge time.Duration
	// WarnBefore is how long before expiry the gateway's 230 reply warns
	// (warn_before, default 14 days).
	WarnBefore time.Duration
}

// DefaultPolicy returns the defaults.
func DefaultPolicy() Policy {
	return Policy{MinLength: 12, MinClasses: 3, History: 5, WarnBefore: 14 * 24 * time.Hour}
}

// Longest password accepted at all, so that hashing stays bounded.
const maxPasswordLen = 1024

// Shortest user name the policy looks for in a password.
const minNameCheck = 3

// Most history entries kept.
const maxHistory = 64

// Validate checks p's values, naming the key of each problem.
func (p Policy) Validate() error {
	var errs []error
	if p.MinLength < 1 || p.MinLength > maxPasswordLen {
		errs = append(errs, fmt.Errorf("min_length: %d is outside 1..%d", p.MinLength, maxPasswordLen))
	}
	if p.MinClasses < 0 || p.MinClasses > 4 {
		errs = append(errs, fmt.Errorf("min_classes: %d is outside 0..4", p.MinClasses))
	}
	if p.History < 0 || p.History > maxHistory {
		errs = append(errs, fmt.Errorf("history: %d is outside 0..%d", p.History, maxHistory))
	}
	if p.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("max_age: %v is negative", p.MaxAge))
	}
	if p.WarnBefore < 0 {
		errs = append(errs, fmt.Errorf("warn_before: %v is negative", p.WarnBefore))
	}
	if p.MaxAge > 0 && p.WarnBefore >= p.MaxAge {
		errs = append(errs, fmt.Errorf("warn_before: %v is not shorter than max_age %v", p.WarnBefore, p.MaxAge))
	}
	return errors.Join(errs...)
}

// ErrPolicy is what Check returns for a password the policy refuses; the
// message says which rule, never the password.
var ErrPolicy = errors.New("password refused by the policy")

// Check tests a new password for user against the policy's rules on its
// form. Reuse is checked by CheckReuse, which costs hashing.
func (p Policy) Check(user, password string) error {
	if !utf8.ValidString(password) {
		return fmt.Errorf("%w: not valid UTF-8", ErrPolicy)
	}
	n := utf8.RuneCountInString(password)
	if n < p.MinLength {
		return fmt.Errorf("%w: shorter than %d characters", ErrPolicy, p.MinLength)
	}
	if len(password) > maxPasswordLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrPolicy, maxPasswordLen)
	}
	for _, r := range password {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: contains a control character", ErrPolicy)
		}
	}
	if c := classes(password); c < p.MinClasses {
		return fmt.Errorf("%w: uses %d of the classes lower case, upper case, digit, other; %d are required", ErrPolicy, c, p.MinClasses)
	}
	// Names under three characters are not checked: "a" or "li" would
	// forbid half the passwords and protect nothing.
	if utf8.RuneCountInString(user) >= minNameCheck && strings.Contains(strings.ToLower(password), strings.ToLower(user)) {
		return fmt.Errorf("%w: contains the user name", ErrPolicy)
	}
	return nil
}

// CheckReuse refuses password when it matches the current hash or one of
// the first History entries of history (newest first). Unparsable entries
// are skipped.
func (p Policy) CheckReuse(password, current string, history []string) error {
	if p.History == 0 {
		return nil
	}
	hs := append([]string{current}, history[:min(len(history), p.History)]...)
	for _, s := range hs {
		if s == "" {
			continue
		}
		h, err := ParseHash(s)
		if err != nil {
			continue
		}
		if h.Match(password) {
			return fmt.Errorf("%w: it is the current password or one of the last %d", ErrPolicy, p.History)
		}
	}
	return nil
}

// NextHistory is the history to store after a password change from
// current: current first, then the older entries, History in all.
func (p Policy) NextHistory(current string, history []string) []string {
	if p.History == 0 {
		return nil
	}
	var out []string
	if current != "" {
		out = append(out, current)
	}
	out = append(out, history...)
	return out[:min(len(out), p.History)]
}

// Expires is when a password set at changed expires; zero when the policy
// has no max_age. A zero changed (unknown) counts as long expired.
func (p Policy) Expires(changed time.Time) time.Time {
	if p.MaxAge <= 0 {
		return time.Time{}
	}
	if changed.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return changed.Add(p.MaxAge)
}

// Warn says whether a login at now should be warned that the password
// expires at expires (zero: never).
func (p Policy) Warn(expires, now time.Time) bool {
	return !expires.IsZero() && now.Before(expires) && !now.Before(expires.Add(-p.WarnBefore))
}

func classes(s string) int {
	var lower, upper, digit, other int
	for _, r := range s {
		switch {
		case unicode.IsLower(r):
			lower = 1
		case unicode.IsUpper(r):
			upper = 1
		case unicode.IsDigit(r):
			digit = 1
		default:
			other = 1
		}
	}
	return lower + upper + digit + other
}
