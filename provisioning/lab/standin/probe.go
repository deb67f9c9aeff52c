package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const probeUsage = "usage: standin probe grpc|grpc-watch HOST:PORT [SERVICE] | redis HOST:PORT | http URL | wait-http URL [SECONDS]"

// probe checks a stand-in from outside (also as an exec probe or an init container that waits for
// the frontend: the images hold no shell): exit 0 when it answers healthy, 1 when not, 2 on bad usage.
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
	case "grpc-watch":
		err = watchGRPC(ctx, args[1], strings.Join(args[2:], ""))
	case "http":
		err = probeHTTP(ctx, args[1])
	case "wait-http":
		err = waitHTTP(args[1], time.Duration(max(atoiOr(args[2:], 300), 1))*time.Second)
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

func healthClient(address string) (healthpb.HealthClient, func(), error) {
	target, err := resolve(address)
	if err != nil {
		return nil, nil, err
	}
	conn, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	return healthpb.NewHealthClient(conn), func() { conn.Close() }, nil
}

func probeGRPC(ctx context.Context, address, service string) error {
	client, closeConn, err := healthClient(address)
	if err != nil {
		return err
	}
	defer closeConn()
	request := &healthpb.HealthCheckRequest{Service: service}
	reply, err := client.Check(ctx, request, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	fmt.Println(reply.Status)
	if reply.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("status %s", reply.Status)
	}
	return nil
}

// probeHTTP GETs the URL (its host resolved like the *_ADDR values) and wants a 2xx or 3xx answer.
func probeHTTP(ctx context.Context, raw string) error {
	target, err := url.Parse(raw)
	if err != nil || target.Host == "" {
		return fmt.Errorf("not a URL: %q", raw)
	}
	hostPort := target.Host
	if target.Port() == "" {
		hostPort = net.JoinHostPort(target.Hostname(), "80")
	}
	if target.Host, err = resolve(hostPort); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return err
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	if resp.StatusCode >= 400 {
		return fmt.Errorf("%s answered %s", raw, resp.Status)
	}
	return nil
}

// waitHTTP repeats probeHTTP once a second until it succeeds or the timeout passes.
func waitHTTP(raw string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := probeHTTP(ctx, raw)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		fmt.Fprintln(os.Stderr, "waiting:", err)
		time.Sleep(time.Second)
	}
}

func atoiOr(args []string, fallback int) int {
	if len(args) == 0 {
		return fallback
	}
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return fallback
	}
	return n
}

// watchGRPC prints the first status a health Watch reports.
func watchGRPC(ctx context.Context, address, service string) error {
	client, closeConn, err := healthClient(address)
	if err != nil {
		return err
	}
	defer closeConn()
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	reply, err := stream.Recv()
	if err != nil {
		return err
	}
	fmt.Println(reply.Status)
	if reply.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("status %s", reply.Status)
	}
	return nil
}
