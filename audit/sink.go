package audit

import "context"

// Sink delivers records to one destination (a file, syslog, an HTTP
// collector), in the order given. Write returns once recs are delivered
// (or durably queued, for a spooling wrapper); an error means the batch,
// or its rest, was not, and the caller keeps it and tries again. A Sink is
// used by one goroutine at a time (the trail's delivery goroutine for it).
type Sink interface {
	Name() string
	Write(ctx context.Context, recs []Record) error
	Close() error
}
