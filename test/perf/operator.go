package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

// operatorProcess is the manager running against a cluster, through the counting proxy unless proxy is nil.
type operatorProcess struct {
	cmd   *exec.Cmd
	proxy *countingProxy
	ready string
	log   *os.File
}

func startOperator(c *cluster, manager string) (*operatorProcess, error) {
	p, err := newCountingProxy(c.cfg)
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(filepath.Dir(c.kubeconfig), "operator.kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["perf"] = &clientcmdapi.Cluster{Server: p.url}
	kc.Contexts["perf"] = &clientcmdapi.Context{Cluster: "perf", AuthInfo: "perf"}
	kc.AuthInfos["perf"] = &clientcmdapi.AuthInfo{}
	kc.CurrentContext = "perf"
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		p.close()
		return nil, err
	}
	o, err := launchOperator(manager, kubeconfig, p)
	if err != nil {
		p.close()
	}
	return o, err
}

// startOperatorDirect starts the operator connected to the API server itself, as it runs in a cluster (one HTTP/2
// connection over TLS), without the counting proxy in between, whose extra hop and CPU (on the same CPUs as the
// cluster and the operator: about 80 ms of CPU during a first install) the floor's client does not pay either. For
// timed trials, which count no requests; with -trace the operator still goes through the proxy, which writes the
// trace.
func startOperatorDirect(c *cluster, manager string) (*operatorProcess, error) {
	if trace != nil {
		return startOperator(c, manager)
	}
	return launchOperator(manager, c.kubeconfig, nil)
}

// launchOperator starts the manager binary with kubeconfig; proxy (nil for none) is the counting proxy it goes
// through, stopped with it.
func launchOperator(manager, kubeconfig string, proxy *countingProxy) (*operatorProcess, error) {
	probe, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.CreateTemp("", "meshwright-perf-operator-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(manager, "--leader-elect", "--leader-election-namespace=default", "--zap-log-level=debug", "--zap-time-encoding=rfc3339nano",
		"--health-probe-bind-address=127.0.0.1:"+strconv.Itoa(probe), "--metrics-bind-address=0")
	cmd.Args = append(cmd.Args, strings.Fields(*operatorArgs)...)
	shipped, err := shippedEnv()
	if err != nil {
		return nil, err
	}
	cmd.Env = append(append(append(os.Environ(), shipped...), "KUBECONFIG="+kubeconfig, "POD_NAMESPACE=default"), extraEnv...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	traceMark("starting the operator")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &operatorProcess{cmd: cmd, proxy: proxy, ready: fmt.Sprintf("http://127.0.0.1:%d/readyz", probe), log: logFile}, nil
}

// shippedEnv returns the literal environment variables config/manager gives the operator's container (GOMEMLIMIT):
// the figures are those of the operator as shipped, with no setting of the bench's own.
func shippedEnv() ([]string, error) {
	data, err := os.ReadFile(filepath.Join(*repo, "config", "manager", "manager.yaml"))
	if err != nil {
		return nil, err
	}
	var env []string
	for _, doc := range strings.Split(string(data), "\n---\n") {
		dep := &appsv1.Deployment{}
		if err := yaml.Unmarshal([]byte(doc), dep); err != nil {
			return nil, fmt.Errorf("reading config/manager/manager.yaml: %w", err)
		}
		if dep.Kind != "Deployment" {
			continue
		}
		env = append(env, literalEnv(dep)...)
	}
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "GOMEMLIMIT=") }) {
		return nil, fmt.Errorf("config/manager/manager.yaml sets no GOMEMLIMIT for the operator")
	}
	return env, nil
}

func literalEnv(dep *appsv1.Deployment) []string {
	var env []string
	for _, c := range dep.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				env = append(env, e.Name+"="+e.Value)
			}
		}
	}
	return env
}

// startReadyOperator starts the operator, directly connected to the API server (startOperatorDirect) or through the
// counting proxy, and waits until its readiness probe passes; the caller stops it.
func startReadyOperator(c *cluster, manager string, direct bool) (*operatorProcess, error) {
	start := startOperator
	if direct {
		start = startOperatorDirect
	}
	o, err := start(c, manager)
	if err != nil {
		return nil, err
	}
	if err := o.waitReady(); err != nil {
		o.stop()
		return nil, err
	}
	return o, nil
}

func (o *operatorProcess) waitReady() error {
	deadline := time.Now().Add(*timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(o.ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("operator not ready (log %s)", o.log.Name())
}

// stop stops the operator as Kubernetes would (SIGTERM: it releases its Lease, so the next operator of a trial does
// not wait for it to expire), killing it if it has not exited within 10 s.
func (o *operatorProcess) stop() {
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _, _ = o.cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = o.cmd.Process.Kill()
		<-done
	}
	if o.proxy != nil {
		o.proxy.close()
	}
	o.log.Close()
	if os.Getenv("PERF_KEEP_LOGS") == "" {
		os.Remove(o.log.Name())
	} else {
		fmt.Fprintln(os.Stderr, "operator log:", o.log.Name())
	}
}

// phaseOrder are the reconcile phases the operator logs ("Reconciled", at debug level) with their durations; "start"
// is what a reconcile does before them (reading the mesh, its finalizer).
var phaseOrder = []string{"start", "conflicts", "observe", "resolve", "revisions", "render", "ownership", "certificates", "apply", "assess"}

func (o *operatorProcess) logOffset() int64 {
	st, err := o.log.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// phaseTimes sums, over the reconciles logged after offset, the time spent in each phase.
func (o *operatorProcess) phaseTimes(offset int64) (map[string]time.Duration, int, error) {
	data, err := os.ReadFile(o.log.Name())
	if err != nil {
		return nil, 0, err
	}
	sums, n := map[string]time.Duration{}, 0
	for _, line := range strings.Split(string(data[min(int(offset), len(data)):]), "\n") {
		if !strings.Contains(line, `"msg":"Reconciled"`) {
			continue
		}
		entry := map[string]any{}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			continue
		}
		n++
		for _, ph := range phaseOrder {
			if v, ok := entry[ph].(string); ok {
				if d, err := time.ParseDuration(v); err == nil {
					sums[ph] += d
				}
			}
		}
	}
	return sums, n, nil
}

// settledRSS is the operator's RSS in kB two seconds after the moment it is called (the operator just answered its
// readiness probe, or a mesh just became Ready): past the instant itself, when start-up's or the install's garbage is
// at its peak (VmHWM reports that), and past the release of what only they needed, which the operator makes once
// its reconciles have quieted down (internal/memtrim).
func (o *operatorProcess) settledRSS() float64 {
	time.Sleep(2 * time.Second)
	return o.procKB("VmRSS")
}

// procKB reads a field of the operator's /proc status in KiB.
func (o *operatorProcess) procKB(field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", o.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb
		}
	}
	return 0
}

// cpuTime is the CPU time the operator process has used so far.
func (o *operatorProcess) cpuTime() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", o.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	return statCPU(string(data))
}

// reconcileTotals returns the "total" duration of every reconcile logged after offset.
func (o *operatorProcess) reconcileTotals(offset int64) ([]time.Duration, error) {
	f, err := os.Open(o.log.Name())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	var out []time.Duration
	lines := bufio.NewScanner(f)
	lines.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for lines.Scan() {
		line := lines.Bytes()
		if !bytes.Contains(line, []byte(`"msg":"Reconciled"`)) {
			continue
		}
		var entry struct {
			Total string `json:"total"`
		}
		if json.Unmarshal(line, &entry) != nil {
			continue
		}
		d, _ := time.ParseDuration(entry.Total)
		out = append(out, d)
	}
	return out, lines.Err()
}

// countingProxy forwards the operator's requests to the API server with the admin credentials and counts them by
// Kubernetes verb and resource ("patch servicemeshes/status": a subresource is counted apart from its resource).
type countingProxy struct {
	url    string
	srv    *http.Server
	mu     sync.Mutex
	counts map[string]int
}

type counts map[string]int

func (c counts) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// verb sums the requests of a verb over every resource.
func (c counts) verb(v string) int {
	n := 0
	for k, count := range c {
		if strings.HasPrefix(k, v+" ") {
			n += count
		}
	}
	return n
}

// writes counts mutating requests, except the leader election's Lease renewals (a replica holding the lease renews
// it every retry period by design).
func (c counts) writes() int {
	n := 0
	for _, v := range []string{"create", "update", "patch", "delete", "deletecollection"} {
		n += c.verb(v) - c[v+" leases"]
	}
	return n
}

// trace, with -trace, logs every request the operator sends (start of watches, end of everything, with status and
// duration), to see where an install waits.
var trace *os.File

// extraEnv is more environment for the operators started meanwhile (the [B] trials of -ab-env).
var extraEnv []string

// traceMark writes a line of the harness's own into the trace (an operator started, a mesh turned Ready).
func traceMark(format string, args ...any) {
	if trace != nil {
		cpu := cpuByProcess()
		names := slices.Sorted(maps.Keys(cpu))
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = fmt.Sprintf("%s=%d", n, cpu[n].Milliseconds())
		}
		fmt.Fprintf(trace, "%s == %s [cpu ms %s]\n", time.Now().UTC().Format("15:04:05.000000"), fmt.Sprintf(format, args...), strings.Join(parts, " "))
	}
}

func newCountingProxy(cfg *rest.Config) (*countingProxy, error) {
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, err
	}
	target, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, err
	}
	p := &countingProxy{counts: map[string]int{}}
	resolver := &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = transport
	rp.FlushInterval = -1 // watches stream
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.url = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info, err := resolver.NewRequestInfo(r); err == nil && info.IsResourceRequest {
			p.mu.Lock()
			key := info.Verb + " " + info.Resource
			if info.Subresource != "" {
				key += "/" + info.Subresource
			}
			p.counts[key]++
			p.mu.Unlock()
		}
		began := time.Now()
		if trace != nil && r.URL.Query().Get("watch") == "true" {
			fmt.Fprintf(trace, "%s start %s %s\n", began.UTC().Format("15:04:05.000000"), r.Method, r.URL.RequestURI())
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		rp.ServeHTTP(sw, r)
		if trace != nil {
			fmt.Fprintf(trace, "%s %s %d %s %s\n", began.UTC().Format("15:04:05.000000"), time.Since(began).Round(time.Microsecond), sw.code, r.Method, r.URL.RequestURI())
		}
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *countingProxy) snapshot() counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := counts{}
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// settled waits until the operator has sent no request for 500 ms (its informers listed and watch), then returns the
// counts so far.
func (p *countingProxy) settled() counts {
	last, quiet := p.snapshot().total(), time.Now()
	for time.Since(quiet) < 500*time.Millisecond {
		time.Sleep(50 * time.Millisecond)
		if n := p.snapshot().total(); n != last {
			last, quiet = n, time.Now()
		}
	}
	return p.snapshot()
}

func (p *countingProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = map[string]int{}
}

func (p *countingProxy) close() { _ = p.srv.Close() }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
