package demo

import (
	"net/http"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/demo/backends"
)

// slowDelay is how long a backend set to "slow" waits before it answers:
// longer than the gateway gives an optional part of an answer, so a slow
// loyalty service shows up as a missing section.
const slowDelay = 800 * time.Millisecond

// faultModes are the states the demo's buttons put a backend in.
var faultModes = []struct {
	name  string
	fault backends.Fault
}{
	{"normal", backends.Fault{}},
	{"slow", backends.Fault{Delay: slowDelay}},
	{"failing", backends.Fault{Code: connect.CodeUnavailable}},
}

// faultView is one backend's line of the fault buttons.
type faultView struct {
	Backend string
	Mode    string // the current mode: one of faultModes, or "custom"
	Modes   []string
}

// faults lists the backends' current faults, or nothing without backends.
func (s *Site) faults() []faultView {
	if s.backends == nil {
		return nil
	}
	modes := make([]string, len(faultModes))
	for i, m := range faultModes {
		modes[i] = m.name
	}
	var out []faultView
	for _, b := range s.backends.All() {
		v := faultView{Backend: b.Name(), Mode: "custom", Modes: modes}
		for _, m := range faultModes {
			if b.Fault() == m.fault {
				v.Mode = m.name
			}
		}
		out = append(out, v)
	}
	return out
}

// setFault handles the fault buttons: POST /demo/faults with backend,
// mode and the page to come back to. Only the site's own pages may post.
func (s *Site) setFault(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Demo faults", "")
	if !sameOrigin(r, s.origin) {
		s.refuse(p, http.StatusForbidden, "This form can only be sent from the store's own pages.")
		s.render(w, p, "error")
		return
	}
	if err := parseForm(w, r); err != nil || s.backends == nil {
		s.refuse(p, http.StatusBadRequest, "That form could not be read.")
		s.render(w, p, "error")
		return
	}
	var target *backends.Backend
	for _, b := range s.backends.All() {
		if b.Name() == r.PostForm.Get("backend") {
			target = b
		}
	}
	mode := -1
	for i, m := range faultModes {
		if m.name == r.PostForm.Get("mode") {
			mode = i
		}
	}
	if target == nil || mode < 0 {
		s.refuse(p, http.StatusBadRequest, "There is no such backend or mode.")
		s.render(w, p, "error")
		return
	}
	target.SetFault(faultModes[mode].fault)
	s.logger.Load().InfoContext(r.Context(), "demo: backend fault set", "backend", target.Name(), "mode", faultModes[mode].name)
	redirect(w, r, r.PostForm.Get("return"))
}
