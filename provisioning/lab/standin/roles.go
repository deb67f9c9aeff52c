package main

import (
	"context"
	"sort"
	"strings"
)

type roleFunc func(ctx context.Context, role string) error

// grpcRole is one gRPC backend: its default port (the upstream manifests' PORT) and the backends its
// own RPCs call, as *_ADDR variable names.
type grpcRole struct {
	port       string
	downstream []string
}

var grpcRoles = map[string]grpcRole{
	"productcatalogservice": {port: "3550"},
	"currencyservice":       {port: "7000"},
	"paymentservice":        {port: "50051"},
	"shippingservice":       {port: "50051"},
	"emailservice":          {port: "8080"},
	"adservice":             {port: "9555"},
	"cartservice":           {port: "7070", downstream: []string{"REDIS_ADDR"}},
	"recommendationservice": {port: "8080", downstream: []string{"PRODUCT_CATALOG_SERVICE_ADDR"}},
	"checkoutservice": {port: "5050", downstream: []string{
		"PRODUCT_CATALOG_SERVICE_ADDR", "SHIPPING_SERVICE_ADDR", "PAYMENT_SERVICE_ADDR",
		"EMAIL_SERVICE_ADDR", "CURRENCY_SERVICE_ADDR", "CART_SERVICE_ADDR",
	}},
}

var roles = map[string]roleFunc{
	"frontend":      runFrontend,
	"redis-cart":    runRedis,
	"loadgenerator": runLoadGenerator,
	"pause":         runPause,
}

func init() {
	for name := range grpcRoles {
		roles[name] = runGRPC
	}
}

func roleNames() string {
	names := make([]string, 0, len(roles))
	for name := range roles {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func listenAddress(defaultPort string) string {
	return envOr("LISTEN_HOST", "") + ":" + envOr("PORT", defaultPort)
}
