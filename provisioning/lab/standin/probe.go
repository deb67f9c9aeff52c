package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const probeUsage = "usage: standin probe grpc HOST:PORT [SERVICE] | standin probe redis HOST:PORT"

// probe checks a stand-in from outside: exit 0 when it answers healthy, 1 when not, 2 on bad usage.
func probe(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, probeUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var err error
	switch args[0] {
	case "grpc":
		service := ""
		if len(args) > 2 {
			service = args[2]
		}
		err = probeGRPC(ctx, args[1], service)
	case "redis":
		err = pingRedis(ctx, args[1])
		if err == nil {
			fmt.Println("PONG")
		}
	default:
		fmt.Fprintln(os.Stderr, probeUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func probeGRPC(ctx context.Context, address, service string) error {
	target, err := resolve(address)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	reply, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	fmt.Println(reply.Status)
	if reply.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("status %s", reply.Status)
	}
	return nil
}
