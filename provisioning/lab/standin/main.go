// Command standin plays one Online Boutique service (chosen by $SERVICE) on its real port and
// protocol, so the lab's pods run real containers with real CPU use. It is not the shop: pages are
// tiny, backend RPCs are gRPC health checks, carts live in the frontend's memory.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

const shutdownGrace = 800 * time.Millisecond

func main() {
	log.SetFlags(0)
	log.SetOutput(os.Stdout)
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		os.Exit(probe(os.Args[2:]))
	}
	role := os.Getenv("SERVICE")
	run, ok := roles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "standin: unknown SERVICE %q (known: %s)\n", role, roleNames())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	scheduleCrash()
	if role != "pause" || os.Getenv("ADMIN_PORT") != "" { // a pod's sandbox (pause) must not hold the port
		startAdmin(ctx)
	}
	if err := run(ctx, role); err != nil {
		log.Printf("%s: %v", role, err)
		os.Exit(1)
	}
	log.Printf("%s: stopped", role)
}

// scheduleCrash honours CRASH_AFTER_SECONDS: exit 1 after that many seconds (0: at once).
func scheduleCrash() {
	value := os.Getenv("CRASH_AFTER_SECONDS")
	if value == "" {
		return
	}
	seconds, err := strconv.ParseFloat(value, 64)
	if err != nil || seconds < 0 {
		fmt.Fprintf(os.Stderr, "standin: CRASH_AFTER_SECONDS=%q is not a number of seconds\n", value)
		os.Exit(2)
	}
	crash := func() {
		log.Printf("crashing as asked (CRASH_AFTER_SECONDS=%s)", value)
		os.Exit(1)
	}
	if seconds == 0 {
		crash()
	}
	time.AfterFunc(time.Duration(seconds*float64(time.Second)), crash)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func envInt(name string, fallback int) int {
	v, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		return fallback
	}
	return v
}

func failingReadiness() bool { return os.Getenv("FAIL_READINESS") == "1" }
