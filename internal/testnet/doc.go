// Package testnet holds network helpers for tests: loopback connection
// pairs. Tests only.
package testnet
