package gatewaytest

import "net/url"

// TokenWindow is the length of the token pieces [TokenLog.Find] looks for:
// long enough that no other text matches one by chance, short enough that
// a token cut up or partly re-encoded is still found.
const TokenWindow = 20

// Find reports the first token the provider issued so far, or piece of
// one (any TokenWindow consecutive characters), that text contains, as it
// is or once query-unescaped (a URL's query). It returns the token and the
// piece found.
func (l *TokenLog) Find(text string) (IssuedToken, string, bool) {
	pieces := map[string]IssuedToken{}
	for _, tk := range l.All() {
		for i := 0; i+TokenWindow <= len(tk.Value); i++ {
			pieces[tk.Value[i:i+TokenWindow]] = tk
		}
	}
	texts := []string{text}
	if unescaped, err := url.QueryUnescape(text); err == nil && unescaped != text {
		texts = append(texts, unescaped)
	}
	for _, s := range texts {
		for i := 0; i+TokenWindow <= len(s); i++ {
			if tk, ok := pieces[s[i:i+TokenWindow]]; ok {
				return tk, s[i : i+TokenWindow], true
			}
		}
	}
	return IssuedToken{}, "", false
}
