package idp

import (
	"crypto/rand"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	fositejwt "github.com/ory/fosite/token/jwt"
)

// newSession returns an empty fosite session; fosite fills it from storage
// for the grants that continue an earlier one.
func newSession() *openid.DefaultSession {
	return &openid.DefaultSession{
		Claims:  &fositejwt.IDTokenClaims{},
		Headers: &fositejwt.Headers{},
	}
}

// userSession returns the fosite session of a user who just signed in: the
// ID token's claims, with the profile claims the granted scopes allow.
func (p *Provider) userSession(u User, sid string, authTime time.Time, granted fosite.Arguments) *openid.DefaultSession {
	claims := &fositejwt.IDTokenClaims{
		Subject:     u.Subject,
		AuthTime:    authTime,
		RequestedAt: authTime,
		Extra:       map[string]any{"sid": sid},
	}
	for k, v := range profileClaims(u, granted) {
		claims.Add(k, v)
	}
	return &openid.DefaultSession{
		Claims:   claims,
		Headers:  p.key.headers(""),
		Username: u.Username,
		Subject:  u.Subject,
	}
}

// profileClaims returns the user's claims released by the granted scopes.
func profileClaims(u User, granted fosite.Arguments) map[string]any {
	claims := map[string]any{}
	if granted.Has("profile") {
		claims["name"] = u.Name
		if u.Picture != "" {
			claims["picture"] = u.Picture
		}
	}
	if granted.Has("email") && u.Email != "" {
		claims["email"] = u.Email
		claims["email_verified"] = true
	}
	return claims
}

// idpSession is a sign-in at the provider, named by the sid claim.
type idpSession struct {
	subject string
	clients map[string]bool
}

// sessions remembers the live IdP sessions.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*idpSession
}

func newSessions() *sessions {
	return &sessions{byID: make(map[string]*idpSession)}
}

// start records a new session of subject, signed in for clientID, and
// returns its sid.
func (s *sessions) start(subject, clientID string) string {
	sid := rand.Text()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[sid] = &idpSession{subject: subject, clients: map[string]bool{clientID: true}}
	return sid
}

// end forgets the session and reports whether it was live.
func (s *sessions) end(sid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.byID[sid]
	delete(s.byID, sid)
	return ok
}

// endFor ends the session sid if it is live and clientID signed in with
// it, and returns its subject.
func (s *sessions) endFor(sid, clientID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[sid]
	if !ok || !sess.clients[clientID] {
		return "", false
	}
	delete(s.byID, sid)
	return sess.subject, true
}

// count returns how many sessions of subject are live.
func (s *sessions) count(subject string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sess := range s.byID {
		if sess.subject == subject {
			n++
		}
	}
	return n
}

// sessionClients is a live session's sid and the clients that used it.
type sessionClients struct {
	sid     string
	clients []string
}

// ofSubject returns the live sessions of subject, sorted by sid.
func (s *sessions) ofSubject(subject string) []sessionClients {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sessionClients
	for sid, sess := range s.byID {
		if sess.subject == subject {
			out = append(out, sessionClients{sid: sid, clients: slices.Sorted(maps.Keys(sess.clients))})
		}
	}
	slices.SortFunc(out, func(a, b sessionClients) int { return strings.Compare(a.sid, b.sid) })
	return out
}
