package goclients

// The `tessera serve` process the tests talk to. Every test starts its own server from the
// built binary (TESSERA_BIN, default <repo>/target/debug/tessera) on a free loopback port
// with a fresh data directory, and stops it with SIGTERM when the test ends. Waiting is
// always a bounded poll for a condition; the deadlines are upper bounds for failure, never
// timing assertions.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	v2Accept = "application/vnd.atlas.2023-01-01+json"
	saAccept = "application/vnd.atlas.2024-08-05+json"
	v1Accept = "application/json"

	// Upper bounds only: a healthy server answers in milliseconds.
	startupTimeout        = 30 * time.Second
	signalHandlerTimeout  = 10 * time.Second
	shutdownTimeout       = 15 * time.Second
	pollInterval          = 50 * time.Millisecond // polling interval, not an assertion
	requestTimeoutForTest = 30 * time.Second
)

var tesseraBin string

func TestMain(m *testing.M) {
	// Loopback only: no proxy may see the traffic. Go never proxies loopback addresses, and
	// http.DefaultTransport reads these variables once, before the first request made here.
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"} {
		os.Unsetenv(k)
	}
	os.Setenv("NO_PROXY", "127.0.0.1,localhost")
	os.Setenv("no_proxy", "127.0.0.1,localhost")

	tesseraBin = os.Getenv("TESSERA_BIN")
	if tesseraBin == "" {
		tesseraBin = filepath.Join("..", "..", "target", "debug", "tessera")
	}
	abs, err := filepath.Abs(tesseraBin)
	if err == nil {
		tesseraBin = abs
	}
	if st, err := os.Stat(tesseraBin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		fmt.Fprintf(os.Stderr, "tessera binary not found or not executable at %s; run `cargo build` first or set TESSERA_BIN\n", tesseraBin)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// server is a running `tessera serve` and the bootstrap credentials of its data dir.
type server struct {
	Base       string
	OrgID      string
	ProjectID  string
	PublicKey  string
	PrivateKey string

	cmd     *exec.Cmd
	dataDir string
	stderr  *lockedBuffer
	exited  chan struct{}
	waitErr error
}

// lockedBuffer collects the server's output; the process writes while tests may read.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// childEnv is the environment for the server: no TESSERA_* settings and no proxies from
// the caller, loopback excluded from proxying anyway, no colours in the log.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "TESSERA_"):
		case strings.EqualFold(k, "http_proxy"), strings.EqualFold(k, "https_proxy"),
			strings.EqualFold(k, "all_proxy"), strings.EqualFold(k, "no_proxy"):
		default:
			env = append(env, kv)
		}
	}
	return append(env, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost", "NO_COLOR=1")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("picking a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("closing the port probe: %v", err)
	}
	return port
}

// startServer starts a server with a fresh data dir and registers its shutdown: SIGTERM,
// a bounded wait, exit code 0 expected; SIGKILL (and a test error) if it does not stop.
// A process that dies before it is healthy because the port was taken between picking and
// binding it is retried on a new port.
func startServer(t *testing.T) *server {
	t.Helper()
	root := t.TempDir()
	var lastErr string
	for attempt := 1; attempt <= 3; attempt++ {
		s := &server{
			dataDir: filepath.Join(root, fmt.Sprintf("data%d", attempt)), // must not exist yet
			stderr:  &lockedBuffer{},
			exited:  make(chan struct{}),
		}
		port := freePort(t)
		s.Base = "http://127.0.0.1:" + strconv.Itoa(port)
		s.cmd = exec.Command(tesseraBin, "serve", "--data-dir", s.dataDir, "--listen", "127.0.0.1:"+strconv.Itoa(port))
		s.cmd.Env = childEnv()
		s.cmd.Stdin = nil
		s.cmd.Stdout = s.stderr
		s.cmd.Stderr = s.stderr
		s.cmd.SysProcAttr = childProcAttr()
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", tesseraBin, err)
		}
		go func() {
			s.waitErr = s.cmd.Wait()
			close(s.exited)
		}()
		t.Cleanup(func() { s.stop(t) })

		ok, why := s.waitHealthy()
		if ok {
			// The server may answer /healthz a moment before it installs its signal
			// handlers; waiting for them keeps the SIGTERM at the end deterministic.
			waitSignalHandlers(s.cmd.Process.Pid, s.exited, signalHandlerTimeout)
			s.readBootstrap(t)
			return s
		}
		lastErr = why
		s.kill()
		if !strings.Contains(strings.ToLower(why), "in use") {
			break
		}
	}
	t.Fatalf("tessera serve did not become healthy: %s", lastErr)
	return nil
}

func (s *server) waitHealthy() (bool, string) {
	probe := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	defer probe.CloseIdleConnections()
	deadline := time.Now().Add(startupTimeout)
	last := "no answer yet"
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return false, fmt.Sprintf("process exited (%v) before /healthz answered; output:\n%s", s.waitErr, s.stderr.String())
		default:
		}
		resp, err := probe.Get(s.Base + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "ok" {
				return true, ""
			}
			last = fmt.Sprintf("/healthz answered %d %q", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(pollInterval)
	}
	return false, fmt.Sprintf("no healthy /healthz within %s (%s); output:\n%s", startupTimeout, last, s.stderr.String())
}

func (s *server) readBootstrap(t *testing.T) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(s.dataDir, "bootstrap.json"))
	if err != nil {
		t.Fatalf("reading bootstrap.json: %v", err)
	}
	var b struct {
		OrgID      string `json:"orgId"`
		ProjectID  string `json:"projectId"`
		PublicKey  string `json:"publicKey"`
		PrivateKey string `json:"privateKey"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("parsing bootstrap.json: %v", err)
	}
	if b.OrgID == "" || b.ProjectID == "" || b.PublicKey == "" || b.PrivateKey == "" {
		t.Fatalf("bootstrap.json lacks a field: %s", raw)
	}
	s.OrgID, s.ProjectID, s.PublicKey, s.PrivateKey = b.OrgID, b.ProjectID, b.PublicKey, b.PrivateKey
}

// stop sends SIGTERM and expects exit code 0 within the bound; a process still running
// after it is killed and reported.
func (s *server) stop(t *testing.T) {
	select {
	case <-s.exited:
		return // already gone (or killed by kill())
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM to tessera: %v", err)
	}
	select {
	case <-s.exited:
		if s.waitErr != nil {
			t.Errorf("tessera did not exit 0 on SIGTERM: %v; output:\n%s", s.waitErr, s.stderr.String())
		}
	case <-time.After(shutdownTimeout):
		s.kill()
		t.Errorf("tessera did not exit within %s of SIGTERM; killed", shutdownTimeout)
	}
}

func (s *server) kill() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// waitSignalHandlers waits (bounded) until process pid catches SIGTERM and SIGINT, as the
// kernel reports in /proc/PID/status (Linux). Elsewhere it returns at once.
func waitSignalHandlers(pid int, exited <-chan struct{}, timeout time.Duration) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	if _, err := os.Stat(path); err != nil {
		return
	}
	want := uint64(1)<<(uint(syscall.SIGTERM)-1) | uint64(1)<<(uint(syscall.SIGINT)-1)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return
		default:
		}
		if raw, err := os.ReadFile(path); err == nil {
			for _, line := range strings.Split(string(raw), "\n") {
				if rest, ok := strings.CutPrefix(line, "SigCgt:"); ok {
					if caught, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64); err == nil && caught&want == want {
						return
					}
				}
			}
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not an assertion
	}
}

// ---- HTTP helpers --------------------------------------------------------------------

func (s *server) v2(path string) string { return s.Base + "/api/atlas/v2" + path }
func (s *server) v1(path string) string { return s.Base + "/api/public/v1.0" + path }

// newRequest builds a request with a deadline, the given Accept and, for a non-nil body,
// Content-Type: application/json.
func newRequest(t *testing.T, method, url, accept string, body io.Reader) *http.Request {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeoutForTest)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatalf("building %s %s: %v", method, url, err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func jsonBody(t *testing.T, v any) *bytes.Reader {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding %v: %v", v, err)
	}
	return bytes.NewReader(raw)
}

// do sends req and returns the status, headers and whole body.
func do(t *testing.T, c *http.Client, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer to %s %s: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode, resp.Header, body
}

func decode(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decoding %q: %v", body, err)
	}
}

// atlasError is the Atlas error shape.
type atlasError struct {
	Detail     string `json:"detail"`
	Error      int    `json:"error"`
	ErrorCode  string `json:"errorCode"`
	Parameters []any  `json:"parameters"`
	Reason     string `json:"reason"`
}

// expectError checks an error answer: the status, a JSON Content-Type, exactly the Atlas
// error keys, a matching `error` and the given errorCode.
func expectError(t *testing.T, status int, header http.Header, body []byte, wantStatus int, wantCode string) atlasError {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("expected %d, got %d: %s", wantStatus, status, body)
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var keys map[string]json.RawMessage
	decode(t, body, &keys)
	for _, k := range []string{"detail", "error", "errorCode", "parameters", "reason"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("error body lacks %q: %s", k, body)
		}
	}
	if len(keys) != 5 {
		t.Errorf("error body has keys beyond the Atlas shape: %s", body)
	}
	var e atlasError
	decode(t, body, &e)
	if e.Error != wantStatus {
		t.Errorf("error body says error=%d, want %d", e.Error, wantStatus)
	}
	if e.ErrorCode != wantCode {
		t.Errorf("errorCode = %q, want %q (body %s)", e.ErrorCode, wantCode, body)
	}
	if header.Get("X-Request-Id") == "" {
		t.Errorf("error answer lacks X-Request-Id")
	}
	return e
}
