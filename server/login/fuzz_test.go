package login

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/keyring"
)

// The login attempt of FuzzLoginState, and boxes sealed with the fuzz key
// (0x42 repeated) once and committed, so that the corpus can hold them: the
// genuine cookie, an expired attempt's, and the genuine state sealed with
// another key (0x43 repeated).
var (
	fuzzCreated = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	fuzzNow     = fuzzCreated.Add(time.Minute)
	fuzzState   = loginState{
		State:       "fuzz-state-0123456789abcdefghijklmnopqrstuvwxyzAB",
		Nonce:       "fuzz-nonce",
		Verifier:    "fuzz-verifier-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
		RedirectURI: "https://gw.example/auth/callback",
		ReturnTo:    "/orders?x=1",
		Created:     fuzzCreated,
		Previous:    "prev",
	}
	fuzzExpiredState = "fuzz-expired-state-0123456789abcdefghijklmnopqrstu"
)

const (
	fuzzCookieName   = "__Host-custodian-login-1yucvmsrAb13iY-A"
	fuzzGenuine      = "AUJe1OSIm8dL6U7fxzZpsx3npjMdDbPRE_bon42hEdWauTtuhR-kSSx2wQEWxK6CIpsikc4UyJj49Y6vpowXbJdvC3BQbHrQpHSqS0YDpCyl0iXPlKtFzBtplA6zahEHZlvaKnqkyCRKjITun-aSuRmATy_hEsnj1UEQfnjqAFoz01JqSJ2ZzviPkrG6ZtratlDNvrtdZaElK-HrZaZIjJ2OfeL_qssoh1cGyCnfQ1MRBImyW7ZYb8iMTpXJgShLxlQzTqgd5D_hNBPeslxmcY3D4DlJ3cyj1JgNIDp8ZdIPnmodNTHLm209PVqfEFP5S9ZVawrsATScGEhuTo0gvHS5dc5p_S7r4sh3K6s"
	fuzzExpiredName  = "__Host-custodian-login-avJ7KS-xNbt8-xlC"
	fuzzExpired      = "AUJe1ORLVNfxsMXkiMrn9XHUYEJQPvWeHixTk0H5-atq-0pvqRrsbvQr_YB_8QEfZZgDeQgWYDT93kFoWO_kIbnnEHDxbnCU2fWJm7ptbw_PAT3T6KDaeytvTokMqyWQUYJv-YRlumt3d9Oo2nm40xt0SlFZvgV0FGlr7HBDDBrbgWDjgyKUd1jsWEAvw3FqiHNLXD3IimfN59IOhFcUBcaIEMyfbZ7ZmLSiSAm8azzMPl9SVSYgVgT-sn3OE5JaTfcxqZ3QbY04leGuNNHujAFX9v3ero6H3kdABd6HdOWj8-4MjcsOIyQ9kUolino3a5i1Ilo7O1TLLZlqVk4sURdAVaabqpaJWwP1UYMW"
	fuzzOtherKeySeal = "AUET1UsT8bS-AbNShuvkmZ3XG6OZUI7xh_ynjGVgmJpbYj_FsVb_MrSA32Eb0sOz0AffNyKs7KZa2iUQ4I3CZoLCCioI_Vc0OCZs-mXbTIuoU5TXczYqWD9xYBpTYhQc5N4FVKATlu8B4pHKuCVL70SLbpluzOH7HFcjPsGKQRp2WLOmfQjshU6USH13TbofDWQBMatFReS1iqRrK6w3LV_fbH-FiGDOM8Ybkao9CKADWsHc2PzM4Cq0RdH1QxnOFXOXezPHGOM9j1C3FwKuZFTVvBRGxpl8LUHgv6VmKyO91u3OMl-YhlFH6eNXVKCX4F4wlzKPsQi_mf2l0YPFZ9cr800c3N67Yw2Pv-8"
)

func fuzzKeys(tb testing.TB) *keyring.Ring {
	tb.Helper()
	keys, err := keyring.New([][]byte{bytes.Repeat([]byte{0x42}, keyring.KeySize)})
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

func sameState(a, b loginState) bool {
	return a.State == b.State && a.Nonce == b.Nonce && a.Verifier == b.Verifier && a.RedirectURI == b.RedirectURI &&
		a.ReturnTo == b.ReturnTo && a.Created.Equal(b.Created) && a.Previous == b.Previous
}

// FuzzLoginState opens login attempts from arbitrary Cookie headers and
// state parameters: it never panics, and it opens only the genuine attempt
// with its own state, from its own cookie.
func FuzzLoginState(f *testing.F) {
	keys := fuzzKeys(f)
	if loginCookieName(fuzzState.State) != fuzzCookieName || loginCookieName(fuzzExpiredState) != fuzzExpiredName {
		f.Fatal("the committed cookie names do not match the states")
	}
	fresh, err := sealState(keys, fuzzState)
	if err != nil {
		f.Fatal(err)
	}
	genuineBoxes := [][]byte{}
	for _, v := range []string{fuzzGenuine, fresh.Value} {
		box, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			f.Fatal(err)
		}
		genuineBoxes = append(genuineBoxes, box)
		// The genuine pairs must open, or the fuzz target proves nothing.
		header := http.Header{"Cookie": {fuzzCookieName + "=" + v}}
		if st, err := openState(keys, header, fuzzState.State, fuzzNow); err != nil || !sameState(st, fuzzState) {
			f.Fatalf("the genuine attempt does not open: %v", err)
		}
	}
	mid := len(fuzzGenuine) / 2
	for _, seed := range [][2]string{
		{fuzzCookieName + "=" + fuzzGenuine, fuzzState.State},
		{fresh.Name + "=" + fresh.Value, fuzzState.State},
		{"theme=dark; " + fuzzCookieName + "=" + fuzzGenuine + "; __Host-custodian=x", fuzzState.State},
		{fuzzCookieName + "=" + fuzzGenuine, fuzzState.State[:len(fuzzState.State)-1] + "C"},
		{fuzzCookieName + "=" + fuzzGenuine[:mid] + "A" + fuzzGenuine[mid+1:], fuzzState.State},
		{fuzzCookieName + "=" + fuzzGenuine + "==", fuzzState.State},
		{fuzzCookieName + "=" + strings.NewReplacer("-", "+", "_", "/").Replace(fuzzGenuine), fuzzState.State},
		{fuzzExpiredName + "=" + fuzzExpired, fuzzExpiredState},
		{fuzzExpiredName + "=" + fuzzGenuine, fuzzExpiredState},
		{fuzzCookieName + "=" + fuzzOtherKeySeal, fuzzState.State},
		{fuzzCookieName + "=junk; " + fuzzCookieName + "=" + fuzzGenuine, fuzzState.State},
		{fuzzCookieName + "=" + fuzzGenuine[:10], fuzzState.State},
		{fuzzCookieName + "=" + fuzzGenuine, ""},
		{fuzzCookieName + "=" + fuzzGenuine, strings.Repeat("s", 129)},
		{"", "\x00\xff"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, cookieHeader, state string) {
		header := http.Header{"Cookie": {cookieHeader}}
		st, err := openState(keys, header, state, fuzzNow)
		if err != nil {
			if err != errBadState {
				t.Fatalf("openState: %v, want errBadState", err)
			}
		} else if state != fuzzState.State || !sameState(st, fuzzState) {
			t.Fatalf("openState(%q, %q) opened %+v", cookieHeader, state, st)
		}
		// The genuine attempt, first among its cookies, must open.
		if state != fuzzState.State {
			return
		}
		cookies := (&http.Request{Header: header}).CookiesNamed(fuzzCookieName)
		if len(cookies) == 0 {
			return
		}
		box, decodeErr := base64.RawURLEncoding.DecodeString(cookies[0].Value)
		for _, genuine := range genuineBoxes {
			if decodeErr == nil && bytes.Equal(box, genuine) && err != nil {
				t.Fatalf("openState(%q, %q) refused the genuine attempt: %v", cookieHeader, state, err)
			}
		}
	})
}
