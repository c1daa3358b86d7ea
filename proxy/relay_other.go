//go:build !unix

package proxy

import "net"

// waitReadable returns at once: the next read waits, with its buffer.
func waitReadable(net.Conn) error { return nil }
