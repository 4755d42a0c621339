package idp

import (
	"crypto/sha256"
	"fmt"
	"net/url"
	"slices"

	"github.com/ory/fosite"
)

// Grant types the token endpoint answers, as counted by [Provider.GrantCount].
const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	grantClientCredentials = "client_credentials"
	grantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// supportedScopes returns the scopes every client may request.
func supportedScopes() []string {
	return []string{"openid", "profile", "email", "offline_access"}
}

// Client is an OAuth 2.0 client registered with the provider. Every client is
// confidential and may use every grant the provider supports.
type Client struct {
	// ID and Secret authenticate the client with client_secret_basic or
	// client_secret_post. Both are required.
	ID, Secret string
	// RedirectURIs are the authorization redirect URIs, matched exactly.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the URIs end-session may redirect to,
	// matched exactly.
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI, when set, receives logout tokens.
	BackchannelLogoutURI string
	// Audiences are the audiences the client may request for its tokens.
	Audiences []string
}

// User is an account that can sign in at the login form.
type User struct {
	Username, Password, Subject, Name, Email, Picture string
}

// DefaultUsers returns alice and bob, both with the password "demo".
func DefaultUsers() []User {
	return []User{
		{
			Username: "alice",
			Password: "demo",
			Subject:  "alice",
			Name:     "Alice Liddell",
			Email:    "alice@example.com",
			Picture:  "https://images.example/avatars/alice.png",
		},
		{
			Username: "bob",
			Password: "demo",
			Subject:  "bob",
			Name:     "Bob Builder",
			Email:    "bob@example.com",
		},
	}
}

// validateClients checks the registered clients and returns them by ID.
func validateClients(clients []Client) (map[string]Client, error) {
	byID := make(map[string]Client, len(clients))
	for i, c := range clients {
		if c.ID == "" {
			return nil, fmt.Errorf("client %d: empty ID", i)
		}
		if c.Secret == "" {
			return nil, fmt.Errorf("client %q: empty secret", c.ID)
		}
		if _, dup := byID[c.ID]; dup {
			return nil, fmt.Errorf("client %q: registered twice", c.ID)
		}
		for _, u := range slices.Concat(c.RedirectURIs, c.PostLogoutRedirectURIs) {
			if err := validateAbsoluteURL(u); err != nil {
				return nil, fmt.Errorf("client %q: %w", c.ID, err)
			}
		}
		if c.BackchannelLogoutURI != "" {
			if err := validateAbsoluteURL(c.BackchannelLogoutURI); err != nil {
				return nil, fmt.Errorf("client %q: back-channel logout URI: %w", c.ID, err)
			}
		}
		if slices.Contains(c.Audiences, "") {
			return nil, fmt.Errorf("client %q: empty audience", c.ID)
		}
		c.RedirectURIs = slices.Clone(c.RedirectURIs)
		c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
		c.Audiences = slices.Clone(c.Audiences)
		byID[c.ID] = c
	}
	return byID, nil
}

// validateUsers checks the users and returns them by username.
func validateUsers(users []User) (map[string]User, error) {
	byName := make(map[string]User, len(users))
	subjects := make(map[string]bool, len(users))
	for i, u := range users {
		switch {
		case u.Username == "":
			return nil, fmt.Errorf("user %d: empty username", i)
		case u.Subject == "":
			return nil, fmt.Errorf("user %q: empty subject", u.Username)
		case u.Password == "":
			return nil, fmt.Errorf("user %q: empty password", u.Username)
		}
		if _, dup := byName[u.Username]; dup {
			return nil, fmt.Errorf("user %q: listed twice", u.Username)
		}
		if subjects[u.Subject] {
			return nil, fmt.Errorf("user %q: subject %q already used", u.Username, u.Subject)
		}
		subjects[u.Subject] = true
		byName[u.Username] = u
	}
	return byName, nil
}

func validateAbsoluteURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("URI %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("URI %q: not an absolute http(s) URL without fragment", raw)
	}
	return nil
}

// fositeClient converts a Client for fosite. The secret is stored hashed with
// secretHasher.
func fositeClient(c Client) *fosite.DefaultClient {
	hashed := sha256.Sum256([]byte(c.Secret))
	return &fosite.DefaultClient{
		ID:            c.ID,
		Secret:        hashed[:],
		RedirectURIs:  slices.Clone(c.RedirectURIs),
		GrantTypes:    []string{grantAuthorizationCode, grantRefreshToken, grantClientCredentials, grantTokenExchange},
		ResponseTypes: []string{"code"},
		Scopes:        supportedScopes(),
		Audience:      slices.Clone(c.Audiences),
	}
}
