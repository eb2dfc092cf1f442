package goclients

// Seed 002 through the Go libraries the Atlas Go SDK is built on: a cluster record and a
// grant made over Digest (mongodb-forks/digest), the revoke made with an OAuth client-credentials
// client (golang.org/x/oauth2/clientcredentials, what the SDK's UseOAuthAuth uses), as the
// seed's Go example does.

import (
	"context"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

type clusterDoc struct {
	ID                         string `json:"id"`
	Name                       string `json:"name"`
	GroupID                    string `json:"groupId"`
	StateName                  string `json:"stateName"`
	MongoDBEmployeeAccessGrant *struct {
		GrantType      string `json:"grantType"`
		ExpirationTime string `json:"expirationTime"`
	} `json:"mongoDBEmployeeAccessGrant"`
}

func getCluster(t *testing.T, c *http.Client, srv *server, name string) clusterDoc {
	t.Helper()
	status, _, body := do(t, c, newRequest(t, http.MethodGet, srv.v2("/groups/"+srv.ProjectID+"/clusters/"+name), saAccept, nil))
	if status != http.StatusOK {
		t.Fatalf("get cluster: %d %s", status, body)
	}
	var doc clusterDoc
	decode(t, body, &doc)
	return doc
}

func TestEmployeeAccessGrantWithDigestRevokeWithOAuth(t *testing.T) {
	srv := startServer(t)
	dc := digestClient(t, srv.PublicKey, srv.PrivateKey)
	clusters := srv.v2("/groups/" + srv.ProjectID + "/clusters")

	status, _, body := do(t, dc, newRequest(t, http.MethodPost, clusters, saAccept,
		jsonBody(t, map[string]any{"name": "Cluster0", "clusterType": "REPLICASET"})))
	if status != http.StatusCreated {
		t.Fatalf("create cluster: %d %s", status, body)
	}
	var created clusterDoc
	decode(t, body, &created)
	if created.Name != "Cluster0" || created.GroupID != srv.ProjectID || created.StateName != "IDLE" || created.MongoDBEmployeeAccessGrant != nil {
		t.Fatalf("created cluster %s", body)
	}

	expires := time.Now().UTC().Add(24 * time.Hour).Truncate(time.Second).Format(time.RFC3339)
	status, _, body = do(t, dc, newRequest(t, http.MethodPost, clusters+"/Cluster0:grantMongoDBEmployeeAccess", saAccept,
		jsonBody(t, map[string]any{"grantType": "CLUSTER_INFRASTRUCTURE", "expirationTime": expires})))
	if status != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("grant: %d %q", status, body)
	}
	g := getCluster(t, dc, srv, "Cluster0").MongoDBEmployeeAccessGrant
	if g == nil || g.GrantType != "CLUSTER_INFRASTRUCTURE" || g.ExpirationTime != expires {
		t.Fatalf("grant not shown as given: %+v", g)
	}

	clientID, secret := createServiceAccount(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeoutForTest)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, plainClient(t))
	oc := ccConfig(srv, clientID, secret, oauth2.AuthStyleInHeader).Client(ctx)
	status, _, body = do(t, oc, newRequest(t, http.MethodPost, clusters+"/Cluster0:revokeMongoDBEmployeeAccess", saAccept, nil))
	if status != http.StatusNoContent {
		t.Fatalf("revoke with OAuth: %d %s", status, body)
	}
	if g := getCluster(t, dc, srv, "Cluster0").MongoDBEmployeeAccessGrant; g != nil {
		t.Fatalf("grant still shown after revoke: %+v", g)
	}
	// An unknown cluster is CLUSTER_NOT_FOUND, for this client too.
	status, header, body := do(t, oc, newRequest(t, http.MethodPost, clusters+"/Nope:revokeMongoDBEmployeeAccess", saAccept, nil))
	expectError(t, status, header, body, http.StatusNotFound, "CLUSTER_NOT_FOUND")
}
