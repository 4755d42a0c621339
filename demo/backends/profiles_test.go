package backends_test

import (
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
)

func TestGetProfile(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	cases := []struct {
		subject     string
		want        connect.Code
		displayName string
		email       string
		locale      string
	}{
		{subject: "alice", displayName: "Alice Martin", email: "alice@example.com", locale: "en-GB"},
		{subject: "bob", displayName: "Bob Janssen", email: "bob@example.com", locale: "nl-NL"},
		{subject: "carol", want: connect.CodeNotFound},
	}
	for _, p := range protocols(t) {
		c := newClients(set, p)
		for _, tc := range cases {
			t.Run(p.name+"/"+tc.subject, func(t *testing.T) {
				t.Parallel()
				res, err := c.profiles.GetProfile(bearer(t.Context(), idp.token(t, tc.subject, set.Profiles.Audience())), &profilesv1.GetProfileRequest{})
				wantCode(t, err, tc.want)
				if err != nil {
					return
				}
				got := res.GetProfile()
				if got.GetSubject() != tc.subject || got.GetDisplayName() != tc.displayName ||
					got.GetEmail() != tc.email || got.GetLocale() != tc.locale {
					t.Errorf("got %v, want %s/%s/%s/%s", got, tc.subject, tc.displayName, tc.email, tc.locale)
				}
				if got.GetAvatarUrl() == "" || !strings.HasPrefix(got.GetInternalAccountId(), "acct-") ||
					got.GetRiskScore() == 0 || got.GetStaffNotes() == "" || got.GetKycStatusCode() == "" ||
					!strings.HasSuffix(got.GetStorageHost(), ".acme.internal") {
					t.Errorf("profile lacks avatar or internal fields: %v", got)
				}
			})
		}
	}
}

func TestUpdateProfile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		subject     string
		req         *profilesv1.UpdateProfileRequest
		want        connect.Code
		wantName    string
		wantLocale  string
		wantOptedIn bool
	}{
		{
			name:        "name, locale and opt-out",
			subject:     "alice",
			req:         &profilesv1.UpdateProfileRequest{DisplayName: "Alice M.", Locale: "fr-FR"},
			wantName:    "Alice M.",
			wantLocale:  "fr-FR",
			wantOptedIn: false,
		},
		{
			name:        "empty locale keeps the current one",
			subject:     "bob",
			req:         &profilesv1.UpdateProfileRequest{DisplayName: "B", MarketingOptIn: true},
			wantName:    "B",
			wantLocale:  "nl-NL",
			wantOptedIn: true,
		},
		{
			name:        "64 multibyte characters",
			subject:     "alice",
			req:         &profilesv1.UpdateProfileRequest{DisplayName: strings.Repeat("é", 64), MarketingOptIn: true},
			wantName:    strings.Repeat("é", 64),
			wantLocale:  "en-GB",
			wantOptedIn: true,
		},
		{name: "empty name", subject: "alice", req: &profilesv1.UpdateProfileRequest{}, want: connect.CodeInvalidArgument},
		{
			name:    "65 characters",
			subject: "alice",
			req:     &profilesv1.UpdateProfileRequest{DisplayName: strings.Repeat("a", 65)},
			want:    connect.CodeInvalidArgument,
		},
		{
			name:    "malformed locale",
			subject: "alice",
			req:     &profilesv1.UpdateProfileRequest{DisplayName: "Alice", Locale: "en GB"},
			want:    connect.CodeInvalidArgument,
		},
		{name: "unknown subject", subject: "carol", req: &profilesv1.UpdateProfileRequest{DisplayName: "Carol"}, want: connect.CodeNotFound},
	}
	for i, p := range protocols(t) {
		for _, tc := range cases {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				idp := newTestIDP(t)
				set := startSet(t, idp)
				p := protocols(t)[i] // closed before the Set, so Close needn't wait for idle HTTP/2 clients
				c := newClients(set, p)
				token := idp.token(t, tc.subject, set.Profiles.Audience())
				other := "bob"
				if tc.subject == "bob" {
					other = "alice"
				}
				otherToken := idp.token(t, other, set.Profiles.Audience())
				otherBefore, err := c.profiles.GetProfile(bearer(t.Context(), otherToken), &profilesv1.GetProfileRequest{})
				wantCode(t, err, 0)

				res, err := c.profiles.UpdateProfile(bearer(t.Context(), token), tc.req)
				wantCode(t, err, tc.want)
				if err != nil {
					if tc.subject == "carol" {
						return
					}
					got, err := c.profiles.GetProfile(bearer(t.Context(), token), &profilesv1.GetProfileRequest{})
					wantCode(t, err, 0)
					if got.GetProfile().GetDisplayName() == tc.req.GetDisplayName() {
						t.Errorf("rejected update was stored: %v", got.GetProfile())
					}
					return
				}
				for _, got := range []*profilesv1.Profile{res.GetProfile(), getProfile(t, c, token)} {
					if got.GetDisplayName() != tc.wantName || got.GetLocale() != tc.wantLocale || got.GetMarketingOptIn() != tc.wantOptedIn {
						t.Errorf("got %q/%q/%v, want %q/%q/%v", got.GetDisplayName(), got.GetLocale(), got.GetMarketingOptIn(),
							tc.wantName, tc.wantLocale, tc.wantOptedIn)
					}
					if got.GetSubject() != tc.subject || got.GetInternalAccountId() == "" {
						t.Errorf("update changed the wrong profile or lost fields: %v", got)
					}
				}
				if after := getProfile(t, c, otherToken); after.GetDisplayName() != otherBefore.GetProfile().GetDisplayName() {
					t.Errorf("%s's profile changed to %v", other, after)
				}
			})
		}
	}
}

func getProfile(t *testing.T, c clients, token string) *profilesv1.Profile {
	t.Helper()
	res, err := c.profiles.GetProfile(bearer(t.Context(), token), &profilesv1.GetProfileRequest{})
	if err != nil {
		t.Fatalf("GetProfile: %v", err)
	}
	return res.GetProfile()
}
