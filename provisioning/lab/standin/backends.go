package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// backend is one of the Boutique's gRPC services as its callers know it: the *_ADDR variable that
// holds its address, its role and the upstream service name the stand-in asks for in health Checks.
// A Check for that name stands in for a real RPC (and fans out to the role's own backends), while
// kubelet's probes ask for "" (the server itself).
type backend struct {
	variable, role, rpcName string
}

var backends = []backend{
	{"PRODUCT_CATALOG_SERVICE_ADDR", "productcatalogservice", "hipstershop.ProductCatalogService"},
	{"CURRENCY_SERVICE_ADDR", "currencyservice", "hipstershop.CurrencyService"},
	{"CART_SERVICE_ADDR", "cartservice", "hipstershop.CartService"},
	{"RECOMMENDATION_SERVICE_ADDR", "recommendationservice", "hipstershop.RecommendationService"},
	{"SHIPPING_SERVICE_ADDR", "shippingservice", "hipstershop.ShippingService"},
	{"CHECKOUT_SERVICE_ADDR", "checkoutservice", "hipstershop.CheckoutService"},
	{"AD_SERVICE_ADDR", "adservice", "hipstershop.AdService"},
	{"PAYMENT_SERVICE_ADDR", "paymentservice", "hipstershop.PaymentService"},
	{"EMAIL_SERVICE_ADDR", "emailservice", "hipstershop.EmailService"},
}

func rpcNameOf(match func(backend) bool) string {
	for _, b := range backends {
		if match(b) {
			return b.rpcName
		}
	}
	return ""
}

// resolve checks that address is "host:port" and returns it: names are resolved at dial time by the
// system resolver, through the cluster DNS the kubelet names in the pod's resolv.conf, like every real
// service's (no fallback to the kubelet's <NAME>_SERVICE_HOST variables).
func resolve(address string) (string, error) {
	if _, _, err := net.SplitHostPort(address); err != nil {
		return "", fmt.Errorf("address %q is not host:port: %w", address, err)
	}
	return address, nil
}

func backendTimeout() time.Duration {
	return time.Duration(envInt("BACKEND_TIMEOUT_MS", 2000)) * time.Millisecond
}

type clientPool struct {
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

var clients = &clientPool{conns: map[string]*grpc.ClientConn{}}

func (p *clientPool) get(target string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if conn, ok := p.conns[target]; ok {
		return conn, nil
	}
	params := grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: time.Second}
	params.Backoff.MaxDelay = time.Second
	conn, err := grpc.NewClient("passthrough:///"+target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(params))
	if err != nil {
		return nil, err
	}
	p.conns[target] = conn
	return conn, nil
}

// callBackend stands in for one RPC to the backend named by the *_ADDR variable: a health Check
// for its upstream service name. An empty variable means "not deployed": nothing is called.
func callBackend(ctx context.Context, variable string) error {
	address := os.Getenv(variable)
	if address == "" {
		return nil
	}
	if variable == "REDIS_ADDR" {
		return pingRedis(ctx, address)
	}
	target, err := resolve(address)
	if err != nil {
		return err
	}
	conn, err := clients.get(target)
	if err != nil {
		return fmt.Errorf("%s (%s): %w", variable, address, err)
	}
	ctx, cancel := context.WithTimeout(ctx, backendTimeout())
	defer cancel()
	request := &healthpb.HealthCheckRequest{Service: rpcNameOf(func(b backend) bool { return b.variable == variable })}
	reply, err := healthpb.NewHealthClient(conn).Check(ctx, request)
	if err != nil {
		return fmt.Errorf("%s (%s): %w", variable, address, err)
	}
	if reply.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("%s (%s): %s", variable, address, reply.Status)
	}
	return nil
}

func callBackends(ctx context.Context, variables ...string) error {
	for _, variable := range variables {
		if err := callBackend(ctx, variable); err != nil {
			return err
		}
	}
	return nil
}
