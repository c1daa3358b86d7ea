// Package tunnel is the reverse-connect tunnel, both ends: the agent that
// runs inside the LAN and dials out to the gateway, and the gateway's Hub
// that accepts agents and opens backend connections as streams through
// them, so that the DMZ host needs no route into the LAN.
//
// The link is mutual TLS (TLS 1.3) with certificates pinned both ways
// (SHA-256 of the SubjectPublicKeyInfo): the Hub knows each agent group's
// pins, the agent knows the gateway's pin (and/or a CA). After the
// handshake the agent names its group in one line (hello.go); the group
// must be one its pin belongs to. Then the connection carries a yamux
// session: the gateway opens a stream per backend connection (control,
// data, readiness probe), writes one bounded request line naming the
// destination (codec.go) and reads one reply line; the agent checks the
// destination against its own allow list (allow.go), dials it locally and
// then relays bytes both ways with half-close.
//
// The agent is the one that enforces what the LAN exposes: a compromised
// gateway can reach only the destinations the agent's allow list names,
// and an agent with an empty allow list refuses every stream.
package tunnel
