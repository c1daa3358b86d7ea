// Package nat owns the public face of the data channel: the configured
// passive port range, the leases that hand its ports to sessions one at a
// time, and the choice of the address advertised to clients in 227 replies.
//
// It knows nothing of FTP commands or sessions: the proxy asks it for a
// listener on a free port of the range and gives the port back when the
// transfer ends or its accept deadline passes.
package nat
