package memtrim

import (
	"strings"
	"testing"
)

const smapsSample = `00400000-01a07000 r-xp 00000000 fd:01 1234                               /manager
Size:              22552 kB
Rss:               18000 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me dw
01a07000-034af000 r--p 01607000 fd:01 1234                               /manager
Size:              27296 kB
Rss:               19000 kB
Anonymous:             0 kB
VmFlags: rd mr mw me dw
034af000-03558000 rw-p 030af000 fd:01 1234                               /manager
Rss:                 600 kB
Anonymous:           400 kB
VmFlags: rd wr mr mw me dw
03558000-035a0000 r--p 03158000 fd:01 1234                               /manager
Rss:                  40 kB
Anonymous:            40 kB
VmFlags: rd mr mw me dw
7f0000000000-7f0000100000 r-xp 00000000 fd:01 99                         /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 900 kB
Anonymous:             0 kB
7f0000200000-7f0000300000 rw-p 00000000 00:00 0
Rss:               30000 kB
Anonymous:         30000 kB
7f0000400000-7f0000500000 r--p 00000000 fd:01 77                         /manager (deleted)
Anonymous:             0 kB
`

func TestReleasableSelectsTheExecutablesUnmodifiedReadOnlyMappings(t *testing.T) {
	spans, err := releasable(strings.NewReader(smapsSample), "/manager")
	if err != nil {
		t.Fatal(err)
	}
	// Text and read-only data; not the writable data, not the read-only mapping holding copied (relocated) pages,
	// not a library, not the anonymous heap, not another file of the same name.
	want := []span{{0x400000, 0x1a07000}, {0x1a07000, 0x34af000}}
	if len(spans) != len(want) {
		t.Fatalf("releasable = %#v, want %#v", spans, want)
	}
	for i := range want {
		if spans[i] != want[i] {
			t.Fatalf("releasable = %#v, want %#v", spans, want)
		}
	}
}

func TestReleasableOfAnotherExecutableIsNothing(t *testing.T) {
	spans, err := releasable(strings.NewReader(smapsSample), "/usr/bin/other")
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 0 {
		t.Fatalf("releasable = %#v, want none", spans)
	}
}

func TestParseSmapsReadsEveryMappingAndItsSizes(t *testing.T) {
	mappings, err := parseSmaps(strings.NewReader(smapsSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(mappings) != 7 {
		t.Fatalf("parsed %d mappings, want 7", len(mappings))
	}
	text := mappings[0]
	if text.start != 0x400000 || text.end != 0x1a07000 || text.perms != "r-xp" || text.path != "/manager" || text.kB["Rss"] != 18000 {
		t.Fatalf("first mapping parsed as %+v", text)
	}
	if heap := mappings[5]; heap.path != "" || heap.kB["Anonymous"] != 30000 {
		t.Fatalf("anonymous mapping parsed as %+v", heap)
	}
	if deleted := mappings[6]; deleted.path != "/manager (deleted)" {
		t.Fatalf("the replaced binary's mapping has path %q", deleted.path)
	}
}
