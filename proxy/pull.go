package proxy

// result is what a reader goroutine hands back.
type result[T any] struct {
	v   T
	err error
}

// puller runs reads in a goroutine of its own, one at a time and only on
// request, so that the session goroutine can wait for a line together with
// other events (a transfer's end, ABOR, shutdown) without giving the reader
// the connection for good: between requests nothing reads, which is what
// lets the session swap a connection to TLS after AUTH.
type puller[T any] struct {
	req  chan func() (T, error)
	res  chan result[T]
	busy bool // a request is out and its result not yet taken
}

func newPuller[T any]() *puller[T] {
	return &puller[T]{req: make(chan func() (T, error)), res: make(chan result[T], 1)}
}

// loop serves requests until stop. Run it in its own goroutine.
func (p *puller[T]) loop() {
	for read := range p.req {
		v, err := read()
		p.res <- result[T]{v, err}
	}
}

// want asks for a read unless one is already out.
func (p *puller[T]) want(read func() (T, error)) {
	if !p.busy {
		p.req <- read
		p.busy = true
	}
}

// got must be called with every result taken from res.
func (p *puller[T]) got() { p.busy = false }

// stop ends the loop once the read in progress (if any) returns; close the
// connection first so that it does.
func (p *puller[T]) stop() { close(p.req) }
