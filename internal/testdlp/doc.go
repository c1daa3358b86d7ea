// Package testdlp makes the files the content-inspection tests upload: text
// holding card numbers placed across chunk boundaries, and its gzip form.
package testdlp
