package goclients

// OAuth 2.0 client credentials for service accounts through
// golang.org/x/oauth2/clientcredentials, what the Atlas Go SDK's UseOAuthAuth uses.
//
// The token endpoint allows 10 requests per minute per client; every test creates its own
// service account on its own server and stays well below that.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

type serviceAccount struct {
	ClientID string   `json:"clientId"`
	Name     string   `json:"name"`
	Roles    []string `json:"roles"`
	Secrets  []struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	} `json:"secrets"`
}

// createServiceAccount makes an ORG_OWNER service account with the bootstrap API key
// (Digest) and returns its client id and secret.
func createServiceAccount(t *testing.T, srv *server) (clientID, secret string) {
	t.Helper()
	c := digestClient(t, srv.PublicKey, srv.PrivateKey)
	status, _, body := do(t, c, newRequest(t, http.MethodPost, srv.v2("/orgs/"+srv.OrgID+"/serviceAccounts"), saAccept,
		jsonBody(t, map[string]any{
			"name":                    "Go client",
			"description":             "From Go",
			"roles":                   []string{"ORG_OWNER"},
			"secretExpiresAfterHours": 24,
		})))
	if status != http.StatusCreated {
		t.Fatalf("create service account: %d %s", status, body)
	}
	var sa serviceAccount
	decode(t, body, &sa)
	if sa.ClientID == "" || len(sa.Secrets) != 1 || sa.Secrets[0].Secret == "" || sa.Name != "Go client" {
		t.Fatalf("create service account answered %s", body)
	}
	return sa.ClientID, sa.Secrets[0].Secret
}

// tokenRequest is one call the oauth2 library made to the token endpoint.
type tokenRequest struct {
	basicUser     string
	hasBasic      bool
	formClientID  string
	hasFormSecret bool
	status        int
}

// tokenSpy is the transport of the HTTP client given to the oauth2 library through the
// oauth2.HTTPClient context key. The library uses that client for token requests and, in
// cfg.Client / oauth2.NewClient, as the base of the API calls too; the spy records only
// the token requests and how the library authenticated them.
type tokenSpy struct {
	mu   sync.Mutex
	seen []tokenRequest
}

func (s *tokenSpy) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path != "/api/oauth/token" {
		return http.DefaultTransport.RoundTrip(req)
	}
	tr := tokenRequest{}
	tr.basicUser, _, tr.hasBasic = req.BasicAuth()
	if req.Body != nil && req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			raw, _ := io.ReadAll(rc)
			rc.Close()
			if form, err := url.ParseQuery(string(raw)); err == nil {
				tr.formClientID = form.Get("client_id")
				tr.hasFormSecret = form.Has("client_secret")
			}
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if resp != nil {
		tr.status = resp.StatusCode
	}
	s.mu.Lock()
	s.seen = append(s.seen, tr)
	s.mu.Unlock()
	return resp, err
}

func (s *tokenSpy) requests() []tokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]tokenRequest(nil), s.seen...)
}

// spyContext returns a context whose oauth2 token requests go through a new tokenSpy.
func spyContext(t *testing.T) (context.Context, *tokenSpy) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeoutForTest)
	t.Cleanup(cancel)
	spy := &tokenSpy{}
	return context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: spy}), spy
}

func ccConfig(srv *server, clientID, secret string, style oauth2.AuthStyle) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		TokenURL:     srv.Base + "/api/oauth/token",
		AuthStyle:    style,
	}
}

// plainClient has no credentials of its own (no proxy; loopback only).
func plainClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func bearerGet(t *testing.T, srv *server, token, url, accept string) (int, http.Header, []byte) {
	t.Helper()
	req := newRequest(t, http.MethodGet, url, accept, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return do(t, plainClient(t), req)
}

func TestOAuthClientCredentialsCallsAndRevoke(t *testing.T) {
	srv := startServer(t)
	clientID, secret := createServiceAccount(t, srv)
	ctx, spy := spyContext(t)
	cfg := ccConfig(srv, clientID, secret, oauth2.AuthStyleInHeader)

	// cfg.Client fetches a token on the first call and reuses it.
	c := cfg.Client(ctx)
	status, _, body := do(t, c, newRequest(t, http.MethodGet, srv.v2("/orgs/"+srv.OrgID+"/serviceAccounts/"+clientID), saAccept, nil))
	if status != http.StatusOK {
		t.Fatalf("get own service account with Bearer: %d %s", status, body)
	}
	var sa serviceAccount
	decode(t, body, &sa)
	if sa.ClientID != clientID {
		t.Fatalf("service account answered clientId %q, want %q", sa.ClientID, clientID)
	}
	status, _, body = do(t, c, newRequest(t, http.MethodGet, srv.v1("/orgs"), v1Accept, nil))
	expectOrgListed(t, status, body, srv.OrgID)

	reqs := spy.requests()
	if len(reqs) != 1 {
		t.Fatalf("cfg.Client made %d token requests for two calls, want 1 (reused): %+v", len(reqs), reqs)
	}
	if r := reqs[0]; !r.hasBasic || r.basicUser != clientID || r.formClientID != "" || r.hasFormSecret || r.status != http.StatusOK {
		t.Fatalf("token request %+v: want client_secret_basic only, 200", r)
	}

	// cfg.Token always asks the endpoint for a new token.
	before := time.Now()
	tok, err := cfg.Token(ctx)
	if err != nil {
		t.Fatalf("cfg.Token: %v", err)
	}
	if tok.TokenType != "Bearer" || tok.Type() != "Bearer" {
		t.Errorf("TokenType = %q (Type() %q), want Bearer", tok.TokenType, tok.Type())
	}
	// clientcredentials does not copy the wire expires_in into Token.ExpiresIn (it stays 0
	// in x/oauth2 v0.37.0); the raw answer is kept as the token's extra fields.
	if v, ok := tok.Extra("expires_in").(float64); !ok || v != 3600 {
		t.Errorf("expires_in = %v, want 3600", tok.Extra("expires_in"))
	}
	// The library sets Expiry = (its clock when the answer arrived) + expires_in; a value,
	// not a timing check: it lies between the local clock before and after the call + 1 h.
	if lo, hi := before.Add(time.Hour), time.Now().Add(time.Hour); tok.Expiry.Before(lo) || tok.Expiry.After(hi) {
		t.Errorf("Expiry %s not an hour ahead (between %s and %s)", tok.Expiry, lo, hi)
	}
	if !tok.Valid() || tok.RefreshToken != "" {
		t.Errorf("token valid=%v refresh_token=%q; want valid and no refresh token", tok.Valid(), tok.RefreshToken)
	}
	if strings.Count(tok.AccessToken, ".") != 2 {
		t.Errorf("access token is not a compact JWT: %d dots", strings.Count(tok.AccessToken, "."))
	}
	if n := len(spy.requests()); n != 2 {
		t.Fatalf("%d token requests so far, want 2", n)
	}

	// The new token works as a plain Bearer header too.
	status, _, body = bearerGet(t, srv, tok.AccessToken, srv.v1("/orgs"), v1Accept)
	expectOrgListed(t, status, body, srv.OrgID)

	// RFC 7009 revocation: a plain form POST with the same Basic credentials.
	form := url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}
	req := newRequest(t, http.MethodPost, srv.Base+"/api/oauth/revoke", "", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	status, _, body = do(t, plainClient(t), req)
	if status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, body)
	}

	// The revoked token is refused on both surfaces.
	status, header, body := bearerGet(t, srv, tok.AccessToken, srv.v1("/orgs"), v1Accept)
	expectError(t, status, header, body, http.StatusUnauthorized, "UNAUTHORIZED")
	status, header, body = bearerGet(t, srv, tok.AccessToken, srv.v2("/orgs/"+srv.OrgID+"/serviceAccounts/"+clientID), saAccept)
	expectError(t, status, header, body, http.StatusUnauthorized, "UNAUTHORIZED")

	// Revocation is per token (by jti): the token cfg.Client cached is another one and still
	// works. (The library cannot notice a revocation: it never refreshes on a 401.)
	status, _, body = do(t, c, newRequest(t, http.MethodGet, srv.v1("/orgs"), v1Accept, nil))
	expectOrgListed(t, status, body, srv.OrgID)
	if n := len(spy.requests()); n != 2 {
		t.Fatalf("%d token requests, want still 2", n)
	}
}

// A client built on a TokenSource keeps sending its cached token after that token is
// revoked: the server refuses it, and the library does not fetch a new one by itself.
func TestOAuthRevokedCachedTokenIsRefused(t *testing.T) {
	srv := startServer(t)
	clientID, secret := createServiceAccount(t, srv)
	ctx, spy := spyContext(t)
	cfg := ccConfig(srv, clientID, secret, oauth2.AuthStyleInHeader)
	ts := cfg.TokenSource(ctx) // oauth2.ReuseTokenSource
	c := oauth2.NewClient(ctx, ts)

	status, _, body := do(t, c, newRequest(t, http.MethodGet, srv.v2("/orgs"), v2Accept, nil))
	expectOrgListed(t, status, body, srv.OrgID)
	tok, err := ts.Token()
	if err != nil {
		t.Fatalf("ts.Token: %v", err)
	}
	if n := len(spy.requests()); n != 1 {
		t.Fatalf("%d token requests, want 1 (the client's token is the source's cached one)", n)
	}

	form := url.Values{"token": {tok.AccessToken}}
	req := newRequest(t, http.MethodPost, srv.Base+"/api/oauth/revoke", "", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	if status, _, body := do(t, plainClient(t), req); status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, body)
	}

	status, header, body := do(t, c, newRequest(t, http.MethodGet, srv.v2("/orgs"), v2Accept, nil))
	expectError(t, status, header, body, http.StatusUnauthorized, "UNAUTHORIZED")
	if n := len(spy.requests()); n != 1 {
		t.Fatalf("%d token requests after the 401, want still 1", n)
	}
}

// Tessera authenticates token requests only with client_secret_basic (RFC 6749 §2.3.1).
func TestOAuthAuthStyleInParamsIsRefused(t *testing.T) {
	srv := startServer(t)
	clientID, secret := createServiceAccount(t, srv)
	ctx, spy := spyContext(t)

	_, err := ccConfig(srv, clientID, secret, oauth2.AuthStyleInParams).Token(ctx)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("AuthStyleInParams: want *oauth2.RetrieveError, got %v", err)
	}
	if re.Response.StatusCode != http.StatusBadRequest || re.ErrorCode != "invalid_request" {
		t.Fatalf("AuthStyleInParams: %d %q %q, want 400 invalid_request", re.Response.StatusCode, re.ErrorCode, re.Body)
	}
	if cc := re.Response.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token error Cache-Control = %q, want no-store", cc)
	}
	reqs := spy.requests()
	if len(reqs) != 1 || reqs[0].hasBasic || reqs[0].formClientID != clientID || !reqs[0].hasFormSecret {
		t.Fatalf("want one request with client_id/client_secret in the form and no Basic: %+v", reqs)
	}
}

// AuthStyleAutoDetect (the zero value, what a Config gets when AuthStyle is not set) tries
// the Basic header first and falls back to form parameters only if that fails. Against
// Tessera the first try succeeds, so there is no retry at all: one request, Basic auth,
// and the style is cached for the next token of the same Config.
func TestOAuthAuthStyleAutoDetectUsesBasic(t *testing.T) {
	srv := startServer(t)
	clientID, secret := createServiceAccount(t, srv)
	ctx, spy := spyContext(t)
	cfg := ccConfig(srv, clientID, secret, oauth2.AuthStyleAutoDetect)

	for i := 1; i <= 2; i++ {
		tok, err := cfg.Token(ctx)
		if err != nil {
			t.Fatalf("token %d with AuthStyleAutoDetect: %v", i, err)
		}
		if tok.TokenType != "Bearer" {
			t.Fatalf("token %d: TokenType %q", i, tok.TokenType)
		}
	}
	reqs := spy.requests()
	if len(reqs) != 2 {
		t.Fatalf("want 2 token requests (no retries), got %d: %+v", len(reqs), reqs)
	}
	for i, r := range reqs {
		if !r.hasBasic || r.basicUser != clientID || r.formClientID != "" || r.hasFormSecret || r.status != http.StatusOK {
			t.Errorf("token request %d: %+v, want Basic only and 200", i+1, r)
		}
	}
}

// A wrong secret is invalid_client (401) for client_secret_basic. With AuthStyleAutoDetect
// the library takes that failure as "wrong style", retries with form parameters, and
// reports the second answer (400 invalid_request) instead of the 401.
func TestOAuthWrongSecret(t *testing.T) {
	srv := startServer(t)
	clientID, secret := createServiceAccount(t, srv)
	// Same length and alphabet, last character changed.
	last := byte('a')
	if secret[len(secret)-1] == 'a' {
		last = 'b'
	}
	wrong := secret[:len(secret)-1] + string(last)

	t.Run("AuthStyleInHeader", func(t *testing.T) {
		ctx, spy := spyContext(t)
		_, err := ccConfig(srv, clientID, wrong, oauth2.AuthStyleInHeader).Token(ctx)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) {
			t.Fatalf("want *oauth2.RetrieveError, got %v", err)
		}
		if re.Response.StatusCode != http.StatusUnauthorized || re.ErrorCode != "invalid_client" {
			t.Fatalf("wrong secret: %d %q %s, want 401 invalid_client", re.Response.StatusCode, re.ErrorCode, re.Body)
		}
		if got := re.Response.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic ") {
			t.Errorf("401 invalid_client WWW-Authenticate = %q, want a Basic challenge", got)
		}
		if n := len(spy.requests()); n != 1 {
			t.Errorf("%d token requests, want 1", n)
		}
	})

	t.Run("AuthStyleAutoDetect", func(t *testing.T) {
		ctx, spy := spyContext(t)
		_, err := ccConfig(srv, clientID, wrong, oauth2.AuthStyleAutoDetect).Token(ctx)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) {
			t.Fatalf("want *oauth2.RetrieveError, got %v", err)
		}
		reqs := spy.requests()
		if len(reqs) != 2 || !reqs[0].hasBasic || reqs[0].status != http.StatusUnauthorized ||
			reqs[1].hasBasic || !reqs[1].hasFormSecret || reqs[1].status != http.StatusBadRequest {
			t.Fatalf("want Basic (401) then form parameters (400): %+v", reqs)
		}
		if re.Response.StatusCode != http.StatusBadRequest || re.ErrorCode != "invalid_request" {
			t.Fatalf("reported error %d %q, want the fallback's 400 invalid_request", re.Response.StatusCode, re.ErrorCode)
		}
	})

	// The right secret still works afterwards (the failures did not lock the client out).
	ctx, _ := spyContext(t)
	if _, err := ccConfig(srv, clientID, secret, oauth2.AuthStyleInHeader).Token(ctx); err != nil {
		t.Fatalf("right secret after failures: %v", err)
	}
}
