//go:build !unix

package relay

import "net"

// waitReadable returns at once: the next read waits, with its buffer.
func waitReadable(net.Conn) error { return nil }
