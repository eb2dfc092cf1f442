package goclients

// HTTP Digest API keys through github.com/mongodb-forks/digest, the transport the Atlas
// CLI, the Terraform provider and go-client-mongodb-atlas authenticate with.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/mongodb-forks/digest"
)

// digestClient is what the Atlas Go clients build: an http.Client whose transport is
// digest.NewTransport(publicKey, privateKey).
func digestClient(t *testing.T, publicKey, privateKey string) *http.Client {
	t.Helper()
	tr := digest.NewTransport(publicKey, privateKey)
	c, err := tr.Client()
	if err != nil {
		t.Fatalf("digest client: %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

type orgList struct {
	Links      []any `json:"links"`
	TotalCount int   `json:"totalCount"`
	Results    []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"results"`
}

type group struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	OrgID string `json:"orgId"`
}

func expectOrgListed(t *testing.T, status int, body []byte, orgID string) {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("list orgs: %d %s", status, body)
	}
	var l orgList
	decode(t, body, &l)
	if l.TotalCount != len(l.Results) || len(l.Results) == 0 {
		t.Fatalf("list orgs: totalCount %d, %d results: %s", l.TotalCount, len(l.Results), body)
	}
	for _, o := range l.Results {
		if o.ID == orgID {
			if o.Name == "" {
				t.Errorf("the bootstrap org has no name: %s", body)
			}
			return
		}
	}
	t.Fatalf("the bootstrap org %s is not listed: %s", orgID, body)
}

func TestDigestListOrgsV2AndV1(t *testing.T) {
	srv := startServer(t)
	c := digestClient(t, srv.PublicKey, srv.PrivateKey)

	status, header, body := do(t, c, newRequest(t, http.MethodGet, srv.v2("/orgs"), v2Accept, nil))
	expectOrgListed(t, status, body, srv.OrgID)
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.atlas.2023-01-01+json") {
		t.Errorf("v2 Content-Type = %q, want the versioned media type", ct)
	}
	var raw map[string]json.RawMessage
	decode(t, body, &raw)
	if _, ok := raw["links"]; !ok {
		t.Errorf("v2 list lacks links: %s", body)
	}

	status, header, body = do(t, c, newRequest(t, http.MethodGet, srv.v1("/orgs"), v1Accept, nil))
	expectOrgListed(t, status, body, srv.OrgID)
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("v1.0 Content-Type = %q, want application/json", ct)
	}
}

func TestDigestProjectLifecycle(t *testing.T) {
	srv := startServer(t)
	c := digestClient(t, srv.PublicKey, srv.PrivateKey)

	status, _, body := do(t, c, newRequest(t, http.MethodPost, srv.v2("/groups"), v2Accept,
		jsonBody(t, map[string]string{"name": "go-project", "orgId": srv.OrgID})))
	if status != http.StatusOK {
		t.Fatalf("create project: %d %s", status, body)
	}
	var created group
	decode(t, body, &created)
	if created.ID == "" || created.Name != "go-project" || created.OrgID != srv.OrgID {
		t.Fatalf("create project answered %s", body)
	}

	status, _, body = do(t, c, newRequest(t, http.MethodGet, srv.v2("/groups/"+created.ID), v2Accept, nil))
	if status != http.StatusOK {
		t.Fatalf("get project: %d %s", status, body)
	}
	var got group
	decode(t, body, &got)
	if got != created {
		t.Fatalf("get project answered %+v, created %+v", got, created)
	}

	status, _, body = do(t, c, newRequest(t, http.MethodDelete, srv.v2("/groups/"+created.ID), v2Accept, nil))
	if status != http.StatusNoContent {
		t.Fatalf("delete project: %d %s", status, body)
	}
	if len(body) != 0 {
		t.Errorf("204 with a body: %q", body)
	}

	status, header, body := do(t, c, newRequest(t, http.MethodGet, srv.v2("/groups/"+created.ID), v2Accept, nil))
	expectError(t, status, header, body, http.StatusNotFound, "GROUP_NOT_FOUND")
}

// exchange is one round trip as the network saw it, below the digest transport.
type exchange struct {
	method        string
	authorization string
	body          []byte
	status        int
	challenges    []string
}

// recorder sits between the digest transport and http.DefaultTransport.
type recorder struct {
	mu        sync.Mutex
	exchanges []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := exchange{method: req.Method, authorization: req.Header.Get("Authorization")}
	out := req.Clone(req.Context())
	if req.Body != nil {
		raw, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		ex.body = raw
		out.Body = io.NopCloser(bytes.NewReader(raw))
	}
	resp, err := http.DefaultTransport.RoundTrip(out)
	if resp != nil {
		ex.status = resp.StatusCode
		ex.challenges = resp.Header.Values("WWW-Authenticate")
	}
	r.mu.Lock()
	r.exchanges = append(r.exchanges, ex)
	r.mu.Unlock()
	return resp, err
}

func (r *recorder) take() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.exchanges
	r.exchanges = nil
	return out
}

// onlyReader hides bytes.Reader's type so http.NewRequest cannot set GetBody: the digest
// transport must then buffer the body itself to send it twice.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// A POST is the very first request of a fresh client: the transport sends it without
// credentials, gets the challenge, and must send the same body again with them.
func TestDigestPostAsFirstRequest(t *testing.T) {
	srv := startServer(t)
	cases := []struct {
		name string
		body func([]byte) io.Reader
	}{
		// http.NewRequest sets GetBody for a *bytes.Reader; the transport re-reads it.
		{"rewindable body", func(b []byte) io.Reader { return bytes.NewReader(b) }},
		// No GetBody: the transport reads the body into memory before the first leg.
		{"one-shot body", func(b []byte) io.Reader { return onlyReader{bytes.NewReader(b)} }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			tr := digest.NewTransport(srv.PublicKey, srv.PrivateKey)
			tr.Transport = rec
			c := &http.Client{Transport: tr}
			t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)

			name := []string{"go-first-post-a", "go-first-post-b"}[i]
			payload, _ := json.Marshal(map[string]string{"name": name, "orgId": srv.OrgID})
			req := newRequest(t, http.MethodPost, srv.v2("/groups"), v2Accept, tc.body(payload))
			if (req.GetBody != nil) != (i == 0) {
				t.Fatalf("GetBody set = %v; the case does not test what it says", req.GetBody != nil)
			}
			status, _, body := do(t, c, req)
			if status != http.StatusOK {
				t.Fatalf("first-request POST: %d %s", status, body)
			}
			var created group
			decode(t, body, &created)
			if created.Name != name || created.OrgID != srv.OrgID || created.ID == "" {
				t.Fatalf("create project answered %s", body)
			}

			ex := rec.take()
			if len(ex) != 2 {
				t.Fatalf("expected challenge + authenticated request, saw %d round trips: %+v", len(ex), ex)
			}
			if ex[0].authorization != "" || ex[0].status != http.StatusUnauthorized {
				t.Errorf("first leg: Authorization %q, status %d; want none and 401", ex[0].authorization, ex[0].status)
			}
			// Two challenges, SHA-256 first; the library takes the first one.
			if len(ex[0].challenges) != 2 ||
				!strings.Contains(ex[0].challenges[0], "algorithm=SHA-256") ||
				!strings.Contains(ex[0].challenges[1], "algorithm=MD5") {
				t.Errorf("challenges = %q, want SHA-256 then MD5", ex[0].challenges)
			}
			for _, ch := range ex[0].challenges {
				if !strings.Contains(ch, `realm="MMS Public API"`) || !strings.Contains(ch, `qop="auth"`) {
					t.Errorf("challenge %q lacks the realm or qop=\"auth\"", ch)
				}
			}
			auth := ex[1].authorization
			if !strings.HasPrefix(auth, "Digest ") || !strings.Contains(auth, `algorithm="SHA-256"`) ||
				!strings.Contains(auth, `username="`+srv.PublicKey+`"`) || !strings.Contains(auth, "qop=auth") {
				t.Errorf("second leg Authorization = %q, want SHA-256 Digest for %s", auth, srv.PublicKey)
			}
			if ex[1].status != http.StatusOK {
				t.Errorf("second leg status %d", ex[1].status)
			}
			for n, e := range ex {
				if e.method != http.MethodPost || !bytes.Equal(e.body, payload) {
					t.Errorf("leg %d sent %s %q, want POST %q", n+1, e.method, e.body, payload)
				}
			}

			// The project exists: the body reached the handler once, intact.
			status, _, body = do(t, digestClient(t, srv.PublicKey, srv.PrivateKey),
				newRequest(t, http.MethodGet, srv.v2("/groups/"+created.ID), v2Accept, nil))
			if status != http.StatusOK {
				t.Fatalf("get the new project: %d %s", status, body)
			}
		})
	}
}

func TestDigestWrongCredentialsAre401(t *testing.T) {
	srv := startServer(t)
	cases := []struct{ name, public, private string }{
		{"wrong private key", srv.PublicKey, "00000000-0000-0000-0000-000000000000"},
		{"private key of another case", srv.PublicKey, strings.ToUpper(srv.PrivateKey)},
		{"unknown public key", "zzzzzzzz", srv.PrivateKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.private == srv.PrivateKey && tc.public == srv.PublicKey {
				t.Skip("the variant equals the real key")
			}
			c := digestClient(t, tc.public, tc.private)
			for _, req := range []*http.Request{
				newRequest(t, http.MethodGet, srv.v2("/orgs"), v2Accept, nil),
				newRequest(t, http.MethodGet, srv.v1("/orgs"), v1Accept, nil),
				newRequest(t, http.MethodPost, srv.v2("/groups"), v2Accept,
					jsonBody(t, map[string]string{"name": "must-not-exist", "orgId": srv.OrgID})),
			} {
				// The transport answered the challenge; the server refused the response and
				// the transport hands that second 401 back to the caller.
				status, header, body := do(t, c, req)
				expectError(t, status, header, body, http.StatusUnauthorized, "UNAUTHORIZED")
				if len(header.Values("WWW-Authenticate")) == 0 {
					t.Errorf("%s %s: 401 without a fresh challenge", req.Method, req.URL.Path)
				}
			}
		})
	}

	// Nothing was created by the refused POSTs.
	c := digestClient(t, srv.PublicKey, srv.PrivateKey)
	status, _, body := do(t, c, newRequest(t, http.MethodGet, srv.v2("/groups"), v2Accept, nil))
	if status != http.StatusOK {
		t.Fatalf("list projects: %d %s", status, body)
	}
	if strings.Contains(string(body), "must-not-exist") {
		t.Fatalf("a refused POST created a project: %s", body)
	}
}
