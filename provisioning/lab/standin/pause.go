package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// runPause is the pod sandbox: it waits for SIGTERM/SIGINT and reaps orphans while it is PID 1.
func runPause(ctx context.Context, _ string) error {
	children := make(chan os.Signal, 8)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-children:
			reapChildren()
		}
	}
}

func reapChildren() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
