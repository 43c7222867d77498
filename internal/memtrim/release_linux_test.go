package memtrim

import (
	"bufio"
	"os"
	"strconv"
	"strings"
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
	total, inExe := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") {
			inExe = len(fields) >= 6 && fields[5] == exe && !strings.ContainsRune(fields[1], 'w')
			continue
		}
		if inExe && fields[0] == "Rss:" {
			kb, err := strconv.Atoi(fields[1])
			if err != nil {
				t.Fatal(err)
			}
			total += kb
		}
	}
	return total
}

// The process keeps running on the pages it faults back in, and far fewer of them stay resident.
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
