package gatewaytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/custodian-bff/custodian/demo"
)

// TokenLog records every token the demo provider's token endpoint issues.
type TokenLog struct {
	gate   func(grant string, serve func()) // nil: answer at once
	mu     sync.Mutex
	tokens []IssuedToken
}

// IssuedToken is one token the provider issued.
type IssuedToken struct {
	Grant string // grant_type of the request
	Kind  string // access_token, refresh_token, id_token or issued_token
	Value string
}

// wrap returns h recording the tokens of its /token answers. With
// codeExpiresIn > 0, answers to the authorization_code grant claim that
// expires_in instead of the real one.
func (l *TokenLog) wrap(h http.Handler, codeExpiresIn int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/token") {
			h.ServeHTTP(w, r)
			return
		}
		reqBody, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		form, _ := url.ParseQuery(string(reqBody))
		grant := form.Get("grant_type")
		rec := httptest.NewRecorder()
		if l.gate != nil {
			l.gate(grant, func() { h.ServeHTTP(rec, r) })
		} else {
			h.ServeHTTP(rec, r)
		}
		body := rec.Body.Bytes()
		var fields map[string]any
		if json.Unmarshal(body, &fields) == nil {
			l.mu.Lock()
			for _, kind := range []string{"access_token", "refresh_token", "id_token", "issued_token"} {
				if v, ok := fields[kind].(string); ok && v != "" {
					l.tokens = append(l.tokens, IssuedToken{Grant: grant, Kind: kind, Value: v})
				}
			}
			l.mu.Unlock()
			if codeExpiresIn > 0 && grant == "authorization_code" && rec.Code == http.StatusOK {
				fields["expires_in"] = codeExpiresIn
				body, _ = json.Marshal(fields)
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// All returns every token issued so far.
func (l *TokenLog) All() []IssuedToken {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]IssuedToken(nil), l.tokens...)
}

// Last returns the latest token of kind from grant ("" for any grant), ""
// if there is none.
func (l *TokenLog) Last(grant, kind string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.tokens) - 1; i >= 0; i-- {
		if tk := l.tokens[i]; tk.Kind == kind && (grant == "" || tk.Grant == grant) {
			return tk.Value
		}
	}
	return ""
}

// ResponseLog records responses a browser received from the gateway.
type ResponseLog struct {
	mu      sync.Mutex
	entries []Recorded
}

// Recorded is one recorded response.
type Recorded struct {
	What string // method and URL
	Text string // status line, headers, body and trailers
}

// All returns every response recorded so far.
func (l *ResponseLog) All() []Recorded {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Recorded(nil), l.entries...)
}

// recordingTransport records every response that does not come from the
// demo provider's routes. It fails a request whose answer is compressed,
// which it could not scan.
type recordingTransport struct {
	next http.RoundTripper
	log  *ResponseLog
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := rt.next.RoundTrip(req)
	if err != nil || strings.HasPrefix(req.URL.Path, demo.IdPPath) {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	for _, h := range []string{"Content-Encoding", "Connect-Content-Encoding", "Grpc-Encoding"} {
		if v := res.Header.Get(h); v != "" && v != "identity" {
			return nil, fmt.Errorf("recording %s: the body is compressed (%s: %s) and could not be scanned", req.URL, h, v)
		}
	}
	var text strings.Builder
	text.WriteString(res.Status + "\n")
	_ = res.Header.Write(&text)
	text.Write(body)
	text.WriteString("\n")
	_ = res.Trailer.Write(&text)
	rt.log.mu.Lock()
	rt.log.entries = append(rt.log.entries, Recorded{What: req.Method + " " + req.URL.String(), Text: text.String()})
	rt.log.mu.Unlock()
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res, nil
}
