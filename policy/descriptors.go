package policy

// Descriptors one session may hold at once: the client's and the backend's
// control connections, and during a transfer the client's and the
// backend's data connections (the passive listener is closed once the
// client's data connection is accepted; the moment both exist is covered by
// the reserve).
const descriptorsPerSession = 4

// descriptorReserve is kept for everything that is not a session: the
// listeners, the admin API and its clients, log and state files, DNS.
const descriptorReserve = 64

// SessionBudget is the default cap on concurrent sessions (limits.max_sessions
// when it is not set) for a process that may open nofile descriptors
// (RLIMIT_NOFILE) and listens on passivePorts passive ports: small enough
// that the gateway answers 421 to the next client long before accept fails
// with EMFILE. It is at least 1.
func SessionBudget(nofile uint64, passivePorts int) int {
	reserve := uint64(descriptorReserve + max(passivePorts, 0))
	if nofile <= reserve+descriptorsPerSession {
		return 1
	}
	n := (nofile - reserve) / descriptorsPerSession
	return int(min(n, 1<<30))
}
