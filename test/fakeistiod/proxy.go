package fakeistiod

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// proxy is the HTTP CONNECT proxy kube-apiserver's "cluster" egress dials, one Unix connection per tunnel.
type proxy struct {
	kube    kubernetes.Interface
	hooks   *hookTable
	webhook chan<- net.Conn
	log     klog.Logger
}

func (p *proxy) serve(ctx context.Context, l net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := l.Accept()
		if err != nil {
			return // closed by Start's shutdown
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.tunnel(ctx, conn)
		}()
	}
}

// tunnel answers one CONNECT: to the webhook server when the target is an injector service's ClusterIP:port, to the
// target itself when it is a loopback address (URL webhooks, aggregated APIs on loopback), else 502.
func (p *proxy) tunnel(ctx context.Context, conn net.Conn) {
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	req, err := http.ReadRequest(br)
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil || req.Method != http.MethodConnect {
		_, _ = io.WriteString(conn, "HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\n\r\n")
		_ = conn.Close()
		return
	}
	target := req.Host
	if rev, ok := p.injector(ctx, target); ok {
		if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			_ = conn.Close()
			return
		}
		select {
		case p.webhook <- &routedConn{Conn: conn, reader: br, revision: rev}:
		case <-ctx.Done():
			_ = conn.Close()
		}
		return
	}
	host, _, _ := net.SplitHostPort(target)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		p.log.V(1).Info("Refusing a tunnel to a non-loopback target", "target", target)
		_, _ = io.WriteString(conn, "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n")
		_ = conn.Close()
		return
	}
	p.forward(ctx, conn, br, target)
}

// injector reports whether target (ClusterIP:port, as kube-apiserver resolves a webhook service) is a service an
// injector webhook references, and the revision it injects.
func (p *proxy) injector(ctx context.Context, target string) (string, bool) {
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		return "", false
	}
	port, err := strconv.ParseInt(portStr, 10, 32)
	if err != nil {
		return "", false
	}
	for ref, rev := range p.hooks.services() {
		if ref.port != int32(port) {
			continue
		}
		svc, err := p.kube.CoreV1().Services(ref.namespace).Get(ctx, ref.name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		if svc.Spec.ClusterIP == host || slices.Contains(svc.Spec.ClusterIPs, host) {
			return rev, true
		}
	}
	return "", false
}

func (p *proxy) forward(ctx context.Context, conn net.Conn, br *bufio.Reader, target string) {
	var d net.Dialer
	upstream, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		_, _ = fmt.Fprintf(conn, "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n")
		_ = conn.Close()
		return
	}
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		_ = conn.Close()
		_ = upstream.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst io.Writer, src io.Reader) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(upstream, br)
	go pipe(conn, upstream)
	select {
	case <-done:
	case <-ctx.Done():
	}
	_ = conn.Close()
	_ = upstream.Close()
	<-done
}

// routedConn is a tunnelled connection that carries the revision of the service it was addressed to.
type routedConn struct {
	net.Conn
	reader   *bufio.Reader
	revision string
}

// Read drains what the CONNECT parser buffered before reading the connection (nothing, in practice: TLS waits for
// the 200).
func (c *routedConn) Read(b []byte) (int, error) { return c.reader.Read(b) }

// chanListener is the webhook server's listener: the proxy hands it tunnelled connections.
type chanListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.UnixAddr{Name: "fakeistiod", Net: "unix"} }

var errNotRouted = errors.New("connection did not come through the proxy")
