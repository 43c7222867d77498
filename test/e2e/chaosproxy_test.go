//go:build e2e

package e2e

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// chaosProxy stands between one operator process and the API server, on loopback. It counts the operator's
// mutating requests (POST, PUT, PATCH, DELETE), leaving out leader election Leases and Events, whose timing is the
// clock's, so that "the N-th mutating request" names the same step of a scenario on every run. Armed with N, it
// kills the operator (SIGKILL) at that request: before forwarding it when N is odd (the request never happened),
// after the API server answered when N is even (the request happened, the operator never saw the answer).
type chaosProxy struct {
	server *httptest.Server
	proxy  *httputil.ReverseProxy

	mu        sync.Mutex
	mutations []string // "METHOD path" of each counted request, in order
	killAt    int      // absolute count to kill at; 0: never
	armN      int      // the N it was armed with (its parity picks before or after forwarding)
	armedFrom int      // len(mutations) when armed
	pause     bool     // at killAt, SIGSTOP the victim (and forward the request) instead of killing it
	victim    *operatorProcess
	killedAt  string
	// since, when set, starts a second count: mutations after that moment (the failover test's paused leader).
	since      time.Time
	afterSince []string
}

func newChaosProxy(t testing.TB) *chaosProxy {
	t.Helper()
	target, err := url.Parse(adminCfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	// Forward with the cluster's CA but without the admin's credentials: the operator's own bearer token passes
	// through, so the API server authorises the operator, not the proxy.
	transport, err := rest.TransportFor(&rest.Config{Host: adminCfg.Host, TLSClientConfig: rest.TLSClientConfig{
		CAData: adminCfg.CAData, CAFile: adminCfg.CAFile, Insecure: adminCfg.Insecure}})
	if err != nil {
		t.Fatal(err)
	}
	p := &chaosProxy{}
	p.proxy = &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = target.Host },
		Transport:     transport,
		FlushInterval: -1, // watches stream
	}
	p.server = httptest.NewTLSServer(p)
	t.Cleanup(p.server.Close)
	return p
}

func (p *chaosProxy) url() string { return p.server.URL }

func (p *chaosProxy) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.server.Certificate().Raw})
}

// arm kills victim at the n-th counted mutation from now.
func (p *chaosProxy) arm(victim *operatorProcess, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.victim, p.killAt, p.armN, p.killedAt, p.armedFrom, p.pause = victim, len(p.mutations)+n, n, "", len(p.mutations), false
}

// pauseAt freezes victim (SIGSTOP) at the n-th counted mutation from now, in the middle of a reconcile: the request
// itself is forwarded, and the rest of that reconcile's writes wait for SIGCONT.
func (p *chaosProxy) pauseAt(victim *operatorProcess, n int) {
	p.arm(victim, n)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pause = true
}

// sinceArmed returns the counted mutations since the proxy was last armed, in order.
func (p *chaosProxy) sinceArmed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.mutations[p.armedFrom:]...)
}

func (p *chaosProxy) disarm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killAt = 0
}

// killed returns the request the victim was killed at, or "".
func (p *chaosProxy) killed() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killedAt
}

func (p *chaosProxy) countFrom(at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.since, p.afterSince = at, nil
}

func (p *chaosProxy) mutationsSince() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.afterSince...)
}

func counted(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return false
	}
	return !strings.Contains(r.URL.Path, "/leases") && !strings.Contains(r.URL.Path, "/events")
}

func (p *chaosProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !counted(r) {
		p.proxy.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	what := r.Method + " " + r.URL.Path
	p.mutations = append(p.mutations, what)
	if !p.since.IsZero() {
		p.afterSince = append(p.afterSince, what)
	}
	kill := p.killAt > 0 && len(p.mutations) == p.killAt
	victim, before, pause := p.victim, p.armN%2 == 1, p.pause
	if kill {
		p.killedAt = what
	}
	p.mu.Unlock()
	if !kill {
		p.proxy.ServeHTTP(w, r)
		return
	}
	if pause {
		_ = victim.cmd.Process.Signal(syscall.SIGSTOP)
		p.proxy.ServeHTTP(w, r)
		return
	}
	if before {
		victim.kill()
		http.Error(w, "killed by the chaos proxy", http.StatusServiceUnavailable)
		return
	}
	p.proxy.ServeHTTP(w, r)
	victim.kill()
}
