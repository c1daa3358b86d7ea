// Package metrics turns the gateway's events into Prometheus metrics, on a
// registry of its own (with the Go and process collectors). Every label has
// a bounded set of values: listener names come from the configuration,
// verbs from a fixed list, reasons and results from the events package.
package metrics
