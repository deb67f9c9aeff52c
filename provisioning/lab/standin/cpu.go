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

// defaultCPUMS is each role's CPU cost per request when CPU_MS_PER_REQUEST is unset: the frontend and
// currencyservice (called on nearly every page) are the shop's hot services, as upstream; the others cost
// only what serving a gRPC call costs. Costs are small, as upstream's are: a pod's 200m limit allows 20 ms
// of CPU per 100 ms CFS period, so a request costing a large part of it is throttled whenever two meet in
// one period, and latency grows with every hop. 150 shoppers (about 40 pages a second) cost the frontend
// about 180m and currencyservice about 120m, past their HPAs' 70% of a 100m request without holding one pod
// at its limit; the in-cluster load generator's 10 shoppers stay well below the target.
var defaultCPUMS = map[string]int{"frontend": 3, "currencyservice": 3}

func cpuPerRequest(role string) int {
	fallback, ok := defaultCPUMS[role]
	if !ok {
		fallback = 0 // a gRPC call costs about a millisecond of CPU by itself here
	}
	return envInt("CPU_MS_PER_REQUEST", fallback)
}
