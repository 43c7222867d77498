// Package memtrim hands back to the kernel the memory that only the operator's start-up used.
//
// A Go binary of this size keeps about 35 MiB of its own executable resident after start-up, although it runs in
// about a third of it: every package's init (client-go's scheme registers over a thousand types, Helm and its template
// functions set up their tables) runs once, Istio's charts are read once from the embedded files, and the kernel maps
// the neighbours of each page it faults in. Those pages stay mapped, and counted in the process's RSS, for its whole
// life. The first install adds the garbage of a render and an apply on top of the heap.
//
// Release drops both: it returns the heap's free pages (runtime/debug.FreeOSMemory) and tells the kernel that the
// executable's read-only mappings are not needed (madvise MADV_DONTNEED). The pages the operator does use come back on
// first touch from the page cache, a minor fault without I/O; the rest stays out. Only read-only mappings of the
// executable file that hold no private copy of a page are released, since for them "not needed" loses nothing: what
// comes back is the file's content, which is what they held.
package memtrim

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// span is an address range [start, end).
type span struct{ start, end uintptr }

// releasable reads /proc/self/smaps-formatted text and returns the mappings of exe that may be released: not
// writable, and without an anonymous (copied-on-write) page, such as relocated read-only data of a position-independent
// binary, whose content differs from the file's.
func releasable(smaps io.Reader, exe string) ([]span, error) {
	var (
		out     []span
		current *span // the mapping being read, when it is exe's and read-only
		anon    bool
	)
	flush := func() {
		if current != nil && !anon {
			out = append(out, *current)
		}
		current, anon = nil, false
	}
	sc := bufio.NewScanner(smaps)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if key, ok := strings.CutSuffix(fields[0], ":"); ok && !strings.Contains(key, "-") {
			// A field of the current mapping ("Rss:", "Anonymous:", ...).
			if key == "Anonymous" && len(fields) >= 2 && fields[1] != "0" {
				anon = true
			}
			continue
		}
		// A mapping's header: "start-end perms offset dev inode path".
		flush()
		if len(fields) < 6 || strings.Join(fields[5:], " ") != exe || strings.ContainsRune(fields[1], 'w') {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		current = &span{uintptr(start), uintptr(end)}
	}
	flush()
	return out, sc.Err()
}
