package main

import (
	"crypto/sha256"
	"runtime"
	"syscall"
	"time"
)

const rusageThread = 1 // RUSAGE_THREAD

// burnCPU hashes until this thread has used ms milliseconds of CPU, so each request costs real CPU
// that cgroups and metrics-server see. Wall time is capped in case the thread is starved.
func burnCPU(ms int) {
	if ms <= 0 {
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	want := time.Duration(ms) * time.Millisecond
	start := threadCPU()
	deadline := time.Now().Add(50*want + time.Second)
	sum := sha256.Sum256([]byte("stand-in"))
	for threadCPU()-start < want && time.Now().Before(deadline) {
		for range 200 {
			sum = sha256.Sum256(sum[:])
		}
	}
}

func threadCPU() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// defaultCPUMS is each role's CPU cost per request when CPU_MS_PER_REQUEST is unset. The frontend and
// currencyservice (called on nearly every page) are the shop's hot services, as upstream. 50 shoppers
// (about 13 frontend requests and 10 currency calls a second) cost the frontend about 170m and
// currencyservice about 120m: past their HPAs' 70% of a 100m request, yet under the 200m limit of one
// pod, so the pod is not throttled into failing its 1 s probes before the HPA adds replicas. The
// in-cluster load generator's 10 shoppers stay below the HPA target.
var defaultCPUMS = map[string]int{"frontend": 13, "currencyservice": 12}

func cpuPerRequest(role string) int {
	fallback, ok := defaultCPUMS[role]
	if !ok {
		fallback = 2
	}
	return envInt("CPU_MS_PER_REQUEST", fallback)
}
