package fakeistiod

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

const (
	// StatusAnnotation is the annotation Istio's injector adds to the pods it injects.
	StatusAnnotation = "sidecar.istio.io/status"
	// RevisionLabel is the label Istio's injector sets to the injecting revision.
	RevisionLabel = "istio.io/rev"
)

type revisionKey struct{}

// webhookServer answers AdmissionReview v1 over TLS on the connections the proxy hands it.
type webhookServer struct {
	http     *http.Server
	listener *chanListener
	conns    chan net.Conn
	log      klog.Logger
}

func newWebhookServer(ca *authority, log klog.Logger) *webhookServer {
	l := newChanListener()
	s := &webhookServer{listener: l, conns: l.conns, log: log}
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.inject),
		ReadHeaderTimeout: 10 * time.Second,
		// Handshakes fail while the API server still holds a caBundle from before Start; that is expected, not news.
		ErrorLog:  stdlog.New(logWriter{log.V(1)}, "", 0),
		TLSConfig: &tls.Config{GetCertificate: ca.getCertificate, MinVersion: tls.VersionTLS12},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				c = tc.NetConn()
			}
			if rc, ok := c.(*routedConn); ok {
				return context.WithValue(ctx, revisionKey{}, rc.revision)
			}
			return ctx
		},
	}
	return s
}

func (s *webhookServer) serve() {
	if err := s.http.ServeTLS(s.listener, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error(err, "Webhook server stopped")
	}
}

func (s *webhookServer) close() { _ = s.http.Close() }

func (s *webhookServer) inject(w http.ResponseWriter, r *http.Request) {
	rev, ok := r.Context().Value(revisionKey{}).(string)
	if !ok {
		http.Error(w, errNotRouted.Error(), http.StatusMisdirectedRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, fmt.Sprintf("decoding the AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	resp, err := admit(review.Request, rev)
	if err != nil {
		resp = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: false,
			Result: &metav1.Status{Message: err.Error(), Code: http.StatusBadRequest}}
	}
	s.log.V(1).Info("Injected", "pod", review.Request.Namespace+"/"+podName(review.Request), "revision", rev, "allowed", resp.Allowed)
	review.Response, review.Request = resp, nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&review)
}

// admit allows every request; a pod gets the injector's revision label and status annotation as a JSONPatch.
func admit(req *admissionv1.AdmissionRequest, rev string) (*admissionv1.AdmissionResponse, error) {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" {
		return resp, nil
	}
	var pod struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return nil, fmt.Errorf("decoding the pod: %w", err)
	}
	patch, err := json.Marshal(injectionPatch(pod.Metadata, rev))
	if err != nil {
		return nil, fmt.Errorf("encoding the patch: %w", err)
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &pt
	return resp, nil
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

func injectionPatch(meta metav1.ObjectMeta, rev string) []patchOp {
	status := fmt.Sprintf(`{"initContainers":null,"containers":["istio-proxy"],"volumes":null,"imagePullSecrets":null,"revision":%q}`, rev)
	var ops []patchOp
	if meta.Labels == nil {
		ops = append(ops, patchOp{Op: "add", Path: "/metadata/labels", Value: map[string]string{}})
	}
	if meta.Annotations == nil {
		ops = append(ops, patchOp{Op: "add", Path: "/metadata/annotations", Value: map[string]string{}})
	}
	return append(ops,
		patchOp{Op: "add", Path: "/metadata/labels/" + escapePointer(RevisionLabel), Value: rev},
		patchOp{Op: "add", Path: "/metadata/annotations/" + escapePointer(StatusAnnotation), Value: status},
	)
}

// escapePointer escapes a JSON Pointer token (RFC 6901).
func escapePointer(token string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(token)
}

func podName(req *admissionv1.AdmissionRequest) string {
	if req.Name != "" {
		return req.Name
	}
	return "(generated)"
}

// logWriter turns the HTTP server's log lines into klog lines.
type logWriter struct{ log klog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info("Webhook server", "message", strings.TrimSpace(string(p)))
	return len(p), nil
}
