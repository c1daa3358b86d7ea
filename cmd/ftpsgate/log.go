package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

func parseLevel(s string) (zerolog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return zerolog.DebugLevel, nil
	case "info", "":
		return zerolog.InfoLevel, nil
	case "warn", "warning":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("%q is not a log level (want debug, info, warn or error)", s)
}

// newLogger builds the process logger: JSON, or a console format when asked
// or when the output is a terminal and no format is set.
func newLogger(c logConfig, out *os.File) zerolog.Logger {
	level, err := parseLevel(c.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	return zerolog.New(logWriter(c, out)).Level(level).With().Timestamp().Logger()
}

// logWriter is the process log's writer: out, or a console format on it
// when asked or when out is a terminal and no format is set.
func logWriter(c logConfig, out *os.File) io.Writer {
	var w io.Writer = out
	format := c.Format
	if format == "" && isatty.IsTerminal(out.Fd()) {
		format = "console"
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: out, TimeFormat: "15:04:05.000"}
	}
	// RFC 3339 with milliseconds: lines of one session are often within
	// the same second.
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
	return w
}
