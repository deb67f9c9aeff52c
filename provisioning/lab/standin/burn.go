package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// The steady CPU load a fault asks for (millicores), burnt in 100 ms slices by one goroutine. It is set
// over HTTP on $ADMIN_PORT (default 9099; "0" turns the listener off), which the suite reaches through the
// API server's pod proxy: POST /burn?millicores=N (or header X-Burn-Millicores: N). The pause role listens only when $ADMIN_PORT is set.
var burnMillicores atomic.Int64

const burnSlice = 100 * time.Millisecond

func startAdmin(ctx context.Context) {
	port := envOr("ADMIN_PORT", "9099")
	if port == "0" {
		return
	}
	burnMillicores.Store(int64(envInt("CPU_BURN_MILLICORES", 0)))
	go burnLoop(ctx)
	mux := http.NewServeMux()
	mux.HandleFunc("/burn", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			asked := r.URL.Query().Get("millicores")
			if asked == "" {
				asked = r.Header.Get("X-Burn-Millicores") // through the API server's pod proxy
			}
			value, err := strconv.Atoi(asked)
			if err != nil || value < 0 || value > 1000 {
				http.Error(w, "millicores: a whole number from 0 to 1000", http.StatusUnprocessableEntity)
				return
			}
			burnMillicores.Store(int64(value))
			log.Printf("admin: burning %dm CPU", value)
		}
		fmt.Fprintf(w, "%d\n", burnMillicores.Load())
	})
	server := &http.Server{Addr: net.JoinHostPort(envOr("LISTEN_HOST", ""), port), Handler: mux}
	go func() {
		<-ctx.Done()
		_ = server.Close()
	}()
	go func() {
		if err := server.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			log.Printf("admin listener: %v", err)
		}
	}()
}

func burnLoop(ctx context.Context) {
	ticker := time.NewTicker(burnSlice)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			burnCPU(int(burnMillicores.Load() * int64(burnSlice/time.Millisecond) / 1000))
		}
	}
}
