package ociimage

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

func TestImageLayer(t *testing.T) {
	img, err := Image(map[string]File{
		"/usr/bin/tool":  {Data: []byte("#!"), Mode: 0o755},
		"/tmp":           {Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		"/etc/app/a.txt": {Data: []byte("a"), Mode: 0o644},
	}, Config{Platform: amd64})
	if err != nil {
		t.Fatalf("Image: %v", err)
	}
	names, headers, _ := layerEntries(t, img)
	t.Run("lists entries sorted, with every parent directory", func(t *testing.T) {
		want := []string{"etc/", "etc/app/", "etc/app/a.txt", "tmp/", "usr/", "usr/bin/", "usr/bin/tool"}
		if !reflect.DeepEqual(names, want) {
			t.Errorf("entries = %q, want %q", names, want)
		}
	})
	t.Run("owns every entry by root and dates it at the epoch", func(t *testing.T) {
		for name, header := range headers {
			if header.Uid != 0 || header.Gid != 0 || !header.ModTime.Equal(epoch) {
				t.Errorf("%s: uid %d gid %d mtime %v, want 0 0 %v", name, header.Uid, header.Gid, header.ModTime, epoch)
			}
		}
	})
	t.Run("keeps the sticky bit of a world-writable directory", func(t *testing.T) {
		if got := headers["tmp/"].Mode; got != 0o1777 {
			t.Errorf("tmp/ mode = %o, want 1777", got)
		}
	})
}

func TestImageRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]File
		cfg     Config
		wantErr string
	}{
		{name: "a relative path", files: map[string]File{"manager": {Mode: 0o755}}, cfg: Config{Platform: amd64}, wantErr: `"manager" is not absolute`},
		{name: "the root as a file", files: map[string]File{"/": {Mode: 0o755}}, cfg: Config{Platform: amd64}, wantErr: "is the root"},
		{name: "a file that is also a parent", files: map[string]File{"/a": {Mode: 0o644}, "/a/b": {Mode: 0o644}}, cfg: Config{Platform: amd64}, wantErr: `"a" is a file and the parent of "a/b"`},
		{name: "no platform", files: map[string]File{"/a": {Mode: 0o644}}, cfg: Config{}, wantErr: "no OS or architecture"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Image(tc.files, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Image: error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
