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

// mapping is one mapping of /proc/<pid>/smaps.
type mapping struct {
	span
	perms, path string
	// kB holds the mapping's sizes in kB by field name ("Rss", "Anonymous", ...).
	kB map[string]int
}

// readOnlyFileOf reports whether m maps exe without write permission.
func (m mapping) readOnlyFileOf(exe string) bool {
	return m.path == exe && !strings.ContainsRune(m.perms, 'w')
}

// parseSmaps reads /proc/<pid>/smaps-formatted text.
func parseSmaps(smaps io.Reader) ([]mapping, error) {
	var out []mapping
	sc := bufio.NewScanner(smaps)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if key, ok := strings.CutSuffix(fields[0], ":"); ok && !strings.Contains(key, "-") {
			// A field of the current mapping: "Rss:  1234 kB".
			if len(out) > 0 && len(fields) == 3 && fields[2] == "kB" {
				if n, err := strconv.Atoi(fields[1]); err == nil {
					out[len(out)-1].kB[key] = n
				}
			}
			continue
		}
		// A mapping's header: "start-end perms offset dev inode [path]".
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok || len(fields) < 5 {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		out = append(out, mapping{span: span{uintptr(start), uintptr(end)}, perms: fields[1],
			path: strings.Join(fields[5:], " "), kB: map[string]int{}})
	}
	return out, sc.Err()
}

// releasable returns the mappings of exe that may be released: not writable, and without an anonymous
// (copied-on-write) page, such as relocated read-only data of a position-independent binary, whose content differs
// from the file's.
func releasable(smaps io.Reader, exe string) ([]span, error) {
	mappings, err := parseSmaps(smaps)
	if err != nil {
		return nil, err
	}
	var out []span
	for _, m := range mappings {
		if m.readOnlyFileOf(exe) && m.kB["Anonymous"] == 0 {
			out = append(out, m.span)
		}
	}
	return out, nil
}
