// Package testnet holds network helpers for tests: loopback connection
// pairs, an echo round trip. Tests only.
package testnet
