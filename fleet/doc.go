// Package fleet holds the state that the gateways of a fleet (replicas
// behind one load balancer) share through Redis: bans with their
// escalation history, the connection rate and the session caps per
// address and per user (counted with leases that expire when a replica
// dies), the TOTP codes already used, and the per-user lockout's failures
// and locks.
//
// Redis is the source of truth. Each replica keeps a local cache of the
// bans (a policy.Defender) that pub/sub keeps current, so that admission
// asks no question of Redis to refuse a banned address, and a ban or an
// unban reaches every replica within a second. Every call on a
// connection's path has a short deadline (fleet.timeout); none is made
// from the data relay. When Redis cannot be reached the store is "down":
// it stops asking until a probe answers, and decides by
// Config.OnStoreError: ModeClosed refuses new sessions and logins (421),
// ModeLocal keeps serving with per-replica state. A down/up change is
// logged once and counted.
//
// The store plugs into the gateway through the injected interfaces:
// *Bans is a proxy.Bans and the admin API's ban store, *Admission is a
// proxy.Admission (its tickets carry the fleet leases through
// policy.TicketHook), *Replay is a totp.ReplayStore and *Lockout an
// auth.Throttle over the replica's own.
package fleet
