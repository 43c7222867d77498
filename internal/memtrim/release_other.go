//go:build !linux

package memtrim

import "runtime/debug"

// Release returns the heap's free pages to the operating system; executable mappings are released on Linux only.
func Release() (int, error) {
	debug.FreeOSMemory()
	return 0, nil
}
