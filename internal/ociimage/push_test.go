package ociimage

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestPushToARegistryThatRefuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "image")
	if err := WriteLayout(dir, mustManagerIndex(t, testBinaries(), testMetadata()), "0.1.0"); err != nil {
		t.Fatalf("WriteLayout: %v", err)
	}
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		wantReason string
	}{
		{
			name:       "names the registry, the status and the registry's own error code",
			status:     http.StatusForbidden,
			body:       `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`,
			wantReason: "HTTP 403 Forbidden (DENIED: requested access to the resource is denied)",
		},
		{
			name:       "names the registry and the status when the body says nothing",
			status:     http.StatusInternalServerError,
			body:       "<html>\n<body>oops</body>\n</html>",
			wantReason: "HTTP 500 Internal Server Error",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(server.Close)
			host := strings.TrimPrefix(server.URL, "http://")
			ref := host + "/meshwright:v0.1.0"

			// One attempt: the default retries of 5xx answers would only slow the test down.
			_, err := Push(context.Background(), dir, ref, remote.WithRetryBackoff(remote.Backoff{Steps: 1}))

			var pushErr *PushError
			if !errors.As(err, &pushErr) {
				t.Fatalf("Push: error %v (%T), want a *PushError", err, err)
			}
			want := "pushing " + ref + " to registry " + host + ": " + tc.wantReason
			if err.Error() != want {
				t.Errorf("Push error:\n got %q\nwant %q", err.Error(), want)
			}
		})
	}
}

func TestPushRefusesBeforeTalkingToARegistry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "image")
	if err := WriteLayout(dir, mustManagerIndex(t, testBinaries(), testMetadata()), ""); err != nil {
		t.Fatalf("WriteLayout: %v", err)
	}
	for _, tc := range []struct {
		name, dir, ref, wantErr string
	}{
		{name: "a reference that does not parse", dir: dir, ref: "Not A Reference", wantErr: `parsing image reference "Not A Reference"`},
		{name: "a layout that does not exist", dir: filepath.Join(t.TempDir(), "missing"), ref: "127.0.0.1:1/meshwright:v1", wantErr: "opening OCI layout"},
	} {
		t.Run("fails clearly on "+tc.name, func(t *testing.T) {
			_, err := Push(context.Background(), tc.dir, tc.ref)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Push(%s, %s): error %v, want one containing %q", tc.dir, tc.ref, err, tc.wantErr)
			}
		})
	}
}
