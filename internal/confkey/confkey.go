package confkey

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a problem with one configuration key.
type Error struct {
	// Key is the key path, e.g. "listeners[0].address" or, inside a
	// package, relative to its section ("ports"). Empty: the section itself.
	Key string
	Err error
}

func (e *Error) Error() string {
	if e.Key == "" {
		return e.Err.Error()
	}
	return e.Key + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// New returns err as a problem of key; nil if err is nil.
func New(key string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Key: key, Err: err}
}

// Errorf is New with a formatted message (%w wraps as in fmt.Errorf).
func Errorf(key, format string, args ...any) error {
	return &Error{Key: key, Err: fmt.Errorf(format, args...)}
}

// Join returns the key path prefix.key: "tls" + "curves" = "tls.curves",
// "listeners" + "[1].name" = "listeners[1].name", "tls" + "" = "tls".
func Join(prefix, key string) string {
	switch {
	case key == "":
		return prefix
	case prefix == "":
		return key
	case strings.HasPrefix(key, "["):
		return prefix + key
	}
	return prefix + "." + key
}

// Under puts prefix in front of the key of every problem in err: a *Error,
// or errors joined by errors.Join (walked through their Unwrap() []error).
// A problem without a key becomes a problem of prefix. Nil stays nil.
func Under(prefix string, err error) error {
	if err == nil {
		return nil
	}
	list := List(err)
	errs := make([]error, len(list))
	for i, e := range list {
		errs[i] = &Error{Key: Join(prefix, e.Key), Err: e.Err}
	}
	return errors.Join(errs...)
}

// List flattens err into its problems, in order: each *Error as it is, each
// error joined with errors.Join walked into, any other error as a problem
// with no key. Nil gives nil.
func List(err error) []*Error {
	if err == nil {
		return nil
	}
	if ke, ok := err.(*Error); ok {
		return []*Error{ke}
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*Error
		for _, e := range j.Unwrap() {
			out = append(out, List(e)...)
		}
		return out
	}
	return []*Error{{Err: err}}
}
