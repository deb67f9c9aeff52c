package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

type requestKey struct {
	route, method string
	code          int
}

type histogram struct {
	counts []uint64
	sum    float64
	total  uint64
}

// httpMetrics is the frontend's /metrics: requests by route, method and code, latency by route.
type httpMetrics struct {
	mu        sync.Mutex
	requests  map[requestKey]uint64
	latencies map[string]*histogram
}

func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{requests: map[requestKey]uint64{}, latencies: map[string]*histogram{}}
}

func (m *httpMetrics) observe(route, method string, code int, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[requestKey{route, method, code}]++
	h := m.latencies[route]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(latencyBuckets))}
		m.latencies[route] = h
	}
	seconds := took.Seconds()
	for i, bound := range latencyBuckets {
		if seconds <= bound {
			h.counts[i]++
		}
	}
	h.sum += seconds
	h.total++
}

func (m *httpMetrics) serve(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprint(w, m.text())
}

func (m *httpMetrics) text() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out strings.Builder
	out.WriteString("# HELP standin_http_requests_total HTTP requests by route, method and status code.\n")
	out.WriteString("# TYPE standin_http_requests_total counter\n")
	var lines []string
	for k, n := range m.requests {
		lines = append(lines, fmt.Sprintf("standin_http_requests_total{route=%q,method=%q,code=\"%d\"} %d\n",
			k.route, k.method, k.code, n))
	}
	sort.Strings(lines)
	out.WriteString(strings.Join(lines, ""))
	out.WriteString("# HELP standin_http_request_duration_seconds HTTP request latency by route.\n")
	out.WriteString("# TYPE standin_http_request_duration_seconds histogram\n")
	routes := make([]string, 0, len(m.latencies))
	for route := range m.latencies {
		routes = append(routes, route)
	}
	sort.Strings(routes)
	for _, route := range routes {
		h := m.latencies[route]
		for i, bound := range latencyBuckets {
			fmt.Fprintf(&out, "standin_http_request_duration_seconds_bucket{route=%q,le=\"%g\"} %d\n", route, bound, h.counts[i])
		}
		fmt.Fprintf(&out, "standin_http_request_duration_seconds_bucket{route=%q,le=\"+Inf\"} %d\n", route, h.total)
		fmt.Fprintf(&out, "standin_http_request_duration_seconds_sum{route=%q} %g\n", route, h.sum)
		fmt.Fprintf(&out, "standin_http_request_duration_seconds_count{route=%q} %d\n", route, h.total)
	}
	return out.String()
}
