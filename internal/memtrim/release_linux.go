package memtrim

import (
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
)

// Release returns the heap's free pages to the kernel and releases the executable's read-only mappings (see the
// package comment). It reports how many bytes of mappings it released; a failure leaves memory as it was.
func Release() (int, error) {
	debug.FreeOSMemory()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	spans, err := releasable(f, exe)
	if err != nil {
		return 0, fmt.Errorf("reading /proc/self/smaps: %w", err)
	}
	released := 0
	for _, s := range spans {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, s.start, s.end-s.start, syscall.MADV_DONTNEED); errno != 0 {
			return released, fmt.Errorf("madvise %#x-%#x: %w", s.start, s.end, errno)
		}
		released += int(s.end - s.start)
	}
	return released, nil
}
