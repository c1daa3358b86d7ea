//go:build unix

package relay

import (
	"net"
	"syscall"
)

// waitReadable waits until c's socket has data (or its end, or an error),
// up to its read deadline, without a buffer: a parked relay's wait. It
// costs one recv(MSG_PEEK) when it starts and one when data comes. Without
// a TCP socket under c it returns at once: the next read waits.
func waitReadable(c net.Conn) error {
	tc := tcpConnOf(c)
	if tc == nil {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc.Read(func(fd uintptr) bool {
		var b [1]byte
		for {
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if err != syscall.EINTR {
				return err != syscall.EAGAIN
			}
		}
	})
}
