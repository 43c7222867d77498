package memtrim

import (
	"os"
	"testing"
)

// executableRSS sums the resident kB of the test binary's read-only mappings.
func executableRSS(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mappings, err := parseSmaps(f)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, m := range mappings {
		if m.readOnlyFileOf(exe) {
			total += m.kB["Rss"]
		}
	}
	return total
}

// The process keeps running on the pages it faults back in, and fewer of them stay resident.
func TestReleaseDropsTheExecutablesResidentPages(t *testing.T) {
	before := executableRSS(t)
	released, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	after := executableRSS(t)
	t.Logf("executable RSS %d kB → %d kB (%d kB of mappings released)", before, after, released/1024)
	if released == 0 {
		t.Fatal("Release released no mapping of the test binary")
	}
	if after >= before {
		t.Fatalf("the executable's resident pages went from %d kB to %d kB, want fewer", before, after)
	}
}
