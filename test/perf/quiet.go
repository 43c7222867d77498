package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clusterProcesses are the command names (as /proc shows them, cut to 15 bytes) of the local cluster's processes.
var clusterProcesses = map[string]bool{
	"kube-apiserver": true, "etcd": true, "kube-controller": true, "kube-scheduler": true, "kwok-controller": true,
}

// Quiet: the cluster counts as quiet once its processes used less than quietCPU of CPU in a window of quietWindow.
const (
	quietWindow = 250 * time.Millisecond
	quietCPU    = 15 * time.Millisecond
	quietAtMost = 15 * time.Second
)

// waitQuiet returns once the local cluster's processes are (nearly) idle, before a timed section starts: work the
// set-up left behind (the API server rebuilding its OpenAPI after CRDs were created, controllers catching up) must
// not be counted against whatever is timed next. Every timed section, the floor's included, starts after it. On a
// machine too busy to get there within quietAtMost it says so and lets the section start: a benchmark reports, it
// does not fail on a slow machine.
func waitQuiet() error {
	deadline := time.Now().Add(quietAtMost)
	last, err := clusterCPU()
	if err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		time.Sleep(quietWindow)
		now, err := clusterCPU()
		if err != nil {
			return err
		}
		if now-last < quietCPU {
			return nil
		}
		last = now
	}
	fmt.Fprintf(os.Stderr, "the cluster's processes were still busy after %s; timing anyway\n", quietAtMost)
	return nil
}

// cpuByProcess is the CPU time used so far by each process the local cluster and the bench run, by command name.
func cpuByProcess() map[string]time.Duration {
	out := map[string]time.Duration{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		stat := string(data)
		open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
		if open < 0 || end < open {
			continue
		}
		name := stat[open+1 : end]
		if !clusterProcesses[name] && name != "manager-perf" && name != "perf" {
			continue
		}
		if cpu, err := statCPU(stat); err == nil {
			out[name] += cpu
		}
	}
	return out
}

// clusterCPU is the CPU time the cluster's processes have used so far.
func clusterCPU() (time.Duration, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var total time.Duration
	found := false
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		stat := string(data)
		open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
		if open < 0 || end < open || !clusterProcesses[stat[open+1:end]] {
			continue
		}
		cpu, err := statCPU(stat)
		if err != nil {
			return 0, err
		}
		total += cpu
		found = true
	}
	if !found {
		return 0, fmt.Errorf("no process of the local cluster found in /proc")
	}
	return total, nil
}

// statCPU is utime + stime of a /proc/<pid>/stat line. The kernel reports them in clock ticks of USER_HZ, which is
// 100 on every Linux architecture Go supports.
func statCPU(stat string) (time.Duration, error) {
	// The command name (field 2) may hold spaces; fields are counted after its closing parenthesis.
	fields := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc stat line")
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("reading utime and stime of a /proc stat line")
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
