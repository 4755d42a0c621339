package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// soakWorkers is how many connections the soak's load generator keeps to
// the gateway, each its own worker: as many as wrk's.
const soakWorkers = wrkConnections

// maxLag is how far behind its schedule the paced generator may fall: a
// call due longer ago is skipped and counted late, so that a generator
// that fell behind resumes at its rate instead of bursting to catch up.
const maxLag = time.Second

// soakCall is one request the soak sends: a path's Connect GET, with its
// headers, and what its answer must be.
type soakCall struct {
	path   benchPath
	url    string
	header http.Header
	// status is the answer's HTTP status wanted; 0 is 200. With 200 the
	// body must also pass check (when not nil).
	status int
	check  func([]byte) error
}

// newSoakCall returns p's call in w, with alice's session when p has one.
func newSoakCall(ctx context.Context, w *world, p benchPath) (soakCall, error) {
	target, headers, _, err := p.target(ctx, w)
	if err != nil {
		return soakCall{}, fmt.Errorf("%s: %w", p.Label, err)
	}
	h := http.Header{}
	for _, line := range headers {
		name, value, _ := strings.Cut(line, ": ")
		h.Set(name, value)
	}
	return soakCall{path: p, url: target, header: h, check: p.Check}, nil
}

// withSession returns c carrying the session cookie value cookie instead,
// its answer to pass check (nil: any body) with status (0: 200).
func (c soakCall) withSession(cookie string, status int, check func([]byte) error) soakCall {
	c.header = c.header.Clone()
	c.header.Set("Cookie", sessionCookie+"="+cookie)
	c.status, c.check = status, check
	return c
}

// do sends c with client and checks its answer.
func (c soakCall) do(ctx context.Context, client *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return err
	}
	req.Header = c.header.Clone()
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", c.path.Key, err)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", c.path.Key, err)
	}
	want := c.status
	if want == 0 {
		want = http.StatusOK
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s: %s, want %d: %.200s", c.path.Key, res.Status, want, body)
	}
	if c.check != nil {
		if err := c.check(body); err != nil {
			return fmt.Errorf("%s: wrong answer: %w: %.200s", c.path.Key, err, body)
		}
	}
	return nil
}

// soakClient is a worker's own keep-alive HTTP/1.1 client: no
// Accept-Encoding, as wrk and the checking calls send none.
func soakClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// mixEntry is a path of the soak's mix and its weight.
type mixEntry struct {
	Key    string `json:"path"`
	Weight int    `json:"weight"`
}

// soakMix is the soak's mix: what share of its calls each path gets, in
// tenths.
var soakMix = []mixEntry{{"order", 4}, {"dashboard", 2}, {"products", 2}, {"session", 2}}

// mixCycle returns a cycle of indexes into weights in which index i comes
// weights[i] times, spread out as evenly as smooth weighted round-robin
// does (nginx's), so that the mix holds over any few consecutive calls,
// not only over a whole run.
func mixCycle(weights []int) []int {
	total := 0
	for _, w := range weights {
		total += max(w, 0)
	}
	current := make([]int, len(weights))
	cycle := make([]int, 0, total)
	for range total {
		best := -1
		for i, w := range weights {
			if w <= 0 {
				continue
			}
			current[i] += w
			if best < 0 || current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		cycle = append(cycle, best)
	}
	return cycle
}

// pacer hands out the times at which calls are due, rate a second from
// start.
type pacer struct {
	start time.Time
	rate  float64 // calls a second

	mu   sync.Mutex
	next int64 // the next slot
	late int64 // slots skipped, more than maxLag overdue
}

// due returns when the next call is due. Slots more than maxLag overdue at
// now are skipped and counted late.
func (p *pacer) due(now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.slot(p.next)
	if behind := now.Sub(at); behind > maxLag {
		skip := int64((behind-maxLag).Seconds()*p.rate) + 1
		p.late += skip
		p.next += skip
		at = p.slot(p.next)
	}
	p.next++
	return at
}

func (p *pacer) slot(n int64) time.Time {
	return p.start.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
}

// lateCalls returns the slots skipped so far.
func (p *pacer) lateCalls() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.late
}

// loadGen sends the mix's calls from soakWorkers workers, as fast as they
// can (pace nil) or at the pacer's rate.
type loadGen struct {
	calls []soakCall
	cycle []int // indexes into calls (mixCycle)
	pace  *pacer

	next   atomic.Uint64 // position in cycle
	done   atomic.Int64  // calls answered right
	failed atomic.Int64  // calls that failed: errors
	errs   *errorLog
	lat    *latencyLog
}

func newLoadGen(calls []soakCall, weights []int, pace *pacer, errs *errorLog) *loadGen {
	return &loadGen{calls: calls, cycle: mixCycle(weights), pace: pace, errs: errs, lat: &latencyLog{}}
}

// run sends calls until ctx ends. A call cut short by ctx counts for
// nothing.
func (g *loadGen) run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { g.work(ctx) })
	}
	wg.Wait()
}

func (g *loadGen) work(ctx context.Context) {
	client := soakClient()
	defer client.CloseIdleConnections()
	for {
		if g.pace != nil {
			wait := time.Until(g.pace.due(time.Now()))
			if wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		c := g.calls[g.cycle[(g.next.Add(1)-1)%uint64(len(g.cycle))]]
		start := time.Now()
		err := c.do(ctx, client)
		if ctx.Err() != nil {
			return
		}
		g.lat.add(time.Since(start))
		if err != nil {
			g.failed.Add(1)
			g.errs.add(err)
		} else {
			g.done.Add(1)
		}
	}
}

// late returns the calls skipped so far because they were overdue.
func (g *loadGen) late() int64 {
	if g.pace == nil {
		return 0
	}
	return g.pace.lateCalls()
}

// errorLogKeep is how many error texts an errorLog keeps.
const errorLogKeep = 10

// errorLog keeps the first few errors' texts.
type errorLog struct {
	start time.Time
	mu    sync.Mutex
	first []string
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.first) < errorLogKeep {
		l.first = append(l.first, fmt.Sprintf("at %v: %v", time.Since(l.start).Round(time.Second), err))
	}
}

func (l *errorLog) texts() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.first)
}

// latencyLog collects the calls' latencies between two samples.
type latencyLog struct {
	mu   sync.Mutex
	seen []time.Duration
}

func (l *latencyLog) add(d time.Duration) {
	l.mu.Lock()
	l.seen = append(l.seen, d)
	l.mu.Unlock()
}

// take returns the latencies collected since the last take, and forgets
// them.
func (l *latencyLog) take() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := l.seen
	l.seen = make([]time.Duration, 0, len(seen))
	return seen
}

// percentile returns the q-th quantile (0 to 1) of ds, nearest rank; 0 for
// none. It sorts ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}
