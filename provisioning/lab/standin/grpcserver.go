package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// healthService answers Check/Watch for "" (kubelet's probes: the server itself) and for its role's
// upstream service name (a stand-in RPC: costs CPU and calls the role's own backends).
type healthService struct {
	healthpb.UnimplementedHealthServer
	role    string
	rpcName string
	cpuMS   int
	// extraLatency delays each stand-in RPC (not kubelet's probes), like upstream's EXTRA_LATENCY.
	extraLatency time.Duration
	mu           sync.Mutex
	stopping     bool
	done         chan struct{}
}

func (h *healthService) status() healthpb.HealthCheckResponse_ServingStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopping || failingReadiness() {
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	return healthpb.HealthCheckResponse_SERVING
}

func (h *healthService) knows(service string) bool {
	return service == "" || service == h.rpcName
}

func (h *healthService) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	started := time.Now()
	reply, err := h.check(ctx, req.Service)
	code := status.Code(err)
	state := ""
	if reply != nil {
		state = reply.Status.String()
	}
	took := time.Since(started).Round(time.Microsecond)
	log.Printf("grpc Check service=%q code=%s status=%s took=%s", req.Service, code, state, took)
	return reply, err
}

func (h *healthService) check(ctx context.Context, service string) (*healthpb.HealthCheckResponse, error) {
	if !h.knows(service) {
		return nil, status.Errorf(codes.NotFound, "unknown service %q", service)
	}
	burnCPU(h.cpuMS)
	current := h.status()
	if service != "" && current == healthpb.HealthCheckResponse_SERVING {
		time.Sleep(h.extraLatency)
		if err := callBackends(ctx, grpcRoles[h.role].downstream...); err != nil {
			return nil, status.Errorf(codes.Unavailable, "%s: backend failed: %v", h.role, err)
		}
	}
	return &healthpb.HealthCheckResponse{Status: current}, nil
}

func (h *healthService) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	last := healthpb.HealthCheckResponse_UNKNOWN
	ticker := time.NewTicker(500 * time.Millisecond)
	defer ticker.Stop()
	for {
		current := healthpb.HealthCheckResponse_SERVICE_UNKNOWN
		if h.knows(req.Service) {
			current = h.status()
		}
		if current != last {
			if err := stream.Send(&healthpb.HealthCheckResponse{Status: current}); err != nil {
				return err
			}
			last = current
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-h.done:
			return status.Error(codes.Unavailable, "shutting down")
		case <-ticker.C:
		}
	}
}

func (h *healthService) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stopping {
		h.stopping = true
		close(h.done)
	}
}

func runGRPC(ctx context.Context, role string) error {
	listener, err := net.Listen("tcp", listenAddress(grpcRoles[role].port))
	if err != nil {
		return err
	}
	latency, err := time.ParseDuration(envOr("EXTRA_LATENCY", "0s"))
	if err != nil {
		return fmt.Errorf("EXTRA_LATENCY: %w", err)
	}
	health := &healthService{
		role:         role,
		rpcName:      rpcNameOf(func(b backend) bool { return b.role == role }),
		cpuMS:        cpuPerRequest(role),
		extraLatency: latency,
		done:         make(chan struct{}),
	}
	server := grpc.NewServer()
	healthpb.RegisterHealthServer(server, health)
	log.Printf("%s: gRPC health on %s (serving as %q and \"\")", role, listener.Addr(), health.rpcName)
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	health.shutdown()
	stopGracefully(server)
	return nil
}

func stopGracefully(server *grpc.Server) {
	stopped := make(chan struct{})
	go func() {
		server.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		server.Stop()
	}
}
