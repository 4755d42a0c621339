package demo

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// GrantStats counts the token endpoint's requests of one grant type.
type GrantStats struct {
	// Requests is how many arrived.
	Requests int64 `json:"requests"`
	// Succeeded is how many were answered 200 with tokens.
	Succeeded int64 `json:"succeeded"`
	// Refused is how many were answered with an error, such as a reused
	// refresh token's invalid_grant.
	Refused int64 `json:"refused"`
	// Dropped is how many were held by a delay and given up because their
	// sender went away first: the provider never saw them.
	Dropped int64 `json:"dropped"`
	// InFlight is how many are being held or served now.
	InFlight int64 `json:"in_flight"`
}

// tokenEndpoint sits in front of the provider: it counts the token
// endpoint's requests by grant type and holds them for the delay set for
// their grant type. Every other request passes straight through.
type tokenEndpoint struct {
	next      http.Handler
	tokenPath string

	mu     sync.Mutex
	stats  map[string]GrantStats
	delays map[string]time.Duration
}

// maxTokenForm bounds the token requests read here, as the provider does.
const maxTokenForm = 64 << 10

func newTokenEndpoint(next http.Handler, issuer string) *tokenEndpoint {
	path := "/token"
	if u, err := url.Parse(issuer); err == nil {
		path = strings.TrimSuffix(u.EscapedPath(), "/") + "/token"
	}
	return &tokenEndpoint{
		next:      next,
		tokenPath: path,
		stats:     make(map[string]GrantStats),
		delays:    make(map[string]time.Duration),
	}
}

func (t *tokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.EscapedPath() != t.tokenPath {
		t.next.ServeHTTP(w, r)
		return
	}
	// Read the form here and hand the provider the same bytes.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTokenForm+1))
	if err != nil || len(body) > maxTokenForm {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	grant := "unknown"
	if form, err := url.ParseQuery(string(body)); err == nil && form.Get("grant_type") != "" {
		grant = form.Get("grant_type")
	}
	delay := t.arrive(grant)
	if delay > 0 {
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
			t.update(grant, func(s *GrantStats) { s.Dropped++; s.InFlight-- })
			return
		}
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	t.next.ServeHTTP(rec, r)
	t.update(grant, func(s *GrantStats) {
		if rec.status == http.StatusOK {
			s.Succeeded++
		} else {
			s.Refused++
		}
		s.InFlight--
	})
}

// arrive counts a request of grant and returns its delay.
func (t *tokenEndpoint) arrive(grant string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats[grant]
	s.Requests++
	s.InFlight++
	t.stats[grant] = s
	return t.delays[grant]
}

func (t *tokenEndpoint) update(grant string, f func(*GrantStats)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats[grant]
	f(&s)
	t.stats[grant] = s
}

func (t *tokenEndpoint) setDelay(grant string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d == 0 {
		delete(t.delays, grant)
		return
	}
	t.delays[grant] = d
}

func (t *tokenEndpoint) snapshot() map[string]GrantStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.stats)
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(p)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
