package server

import (
	"fmt"
	"net/http"
)

// routeMux is the server's http.ServeMux. It remembers the patterns
// registered on it so that a service's routes can be checked for conflicts
// before any is added: http.ServeMux panics on a conflicting pattern, and a
// Mount that failed halfway would leave part of a service served.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func newRouteMux() *routeMux {
	return &routeMux{ServeMux: http.NewServeMux()}
}

// Handle registers handler for pattern; it panics as http.ServeMux does.
func (m *routeMux) Handle(pattern string, handler http.Handler) {
	m.ServeMux.Handle(pattern, handler)
	m.patterns = append(m.patterns, pattern)
}

// HandleFunc registers handler for pattern; it panics as http.ServeMux does.
func (m *routeMux) HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(handler))
}

// add registers routes all together or not at all: it fails, changing
// nothing, when one conflicts with a registered pattern or another route.
func (m *routeMux) add(routes []route) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("server: %v", p)
		}
	}()
	// http.ServeMux's conflicts depend on the patterns only: replaying them
	// on a scratch mux panics exactly where m would.
	scratch := http.NewServeMux()
	for _, p := range m.patterns {
		scratch.Handle(p, http.NotFoundHandler())
	}
	for _, r := range routes {
		scratch.Handle(r.pattern, r.handler)
	}
	for _, r := range routes {
		m.Handle(r.pattern, r.handler)
	}
	return nil
}

// routeList collects the routes connecthttp.Mount would register, for
// routeMux.add.
type routeList []route

func (l *routeList) Handle(pattern string, handler http.Handler) {
	*l = append(*l, route{pattern, handler})
}
