package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html/template"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	sessionCookie  = "shop_session-id"
	currencyCookie = "shop_currency"
	cookieMaxAge   = 48 * 60 * 60
)

// Backends each page calls, as the real frontend's handlers do. A failing one answers 500, except the
// ad service: the real frontend only logs a failed ad.
var (
	homeBackends    = []string{"CURRENCY_SERVICE_ADDR", "PRODUCT_CATALOG_SERVICE_ADDR", "CART_SERVICE_ADDR"}
	productBackends = []string{
		"PRODUCT_CATALOG_SERVICE_ADDR", "CURRENCY_SERVICE_ADDR", "CART_SERVICE_ADDR", "RECOMMENDATION_SERVICE_ADDR",
	}
	cartBackends = []string{
		"CURRENCY_SERVICE_ADDR", "CART_SERVICE_ADDR", "RECOMMENDATION_SERVICE_ADDR", "SHIPPING_SERVICE_ADDR",
		"PRODUCT_CATALOG_SERVICE_ADDR",
	}
	addBackends      = []string{"PRODUCT_CATALOG_SERVICE_ADDR", "CART_SERVICE_ADDR"}
	emptyBackends    = []string{"CART_SERVICE_ADDR"}
	checkoutBackends = []string{"CHECKOUT_SERVICE_ADDR", "RECOMMENDATION_SERVICE_ADDR", "CURRENCY_SERVICE_ADDR"}
	adBackend        = "AD_SERVICE_ADDR"
)

type frontend struct {
	carts   *carts
	metrics *httpMetrics
	cpuMS   int
}

func runFrontend(ctx context.Context, role string) error {
	listener, err := net.Listen("tcp", listenAddress("8080"))
	if err != nil {
		return err
	}
	fe := &frontend{carts: newCarts(), metrics: newHTTPMetrics(), cpuMS: cpuPerRequest(role)}
	server := &http.Server{Handler: fe.routes(), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("%s: HTTP on %s", role, listener.Addr())
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := server.Shutdown(shutdown); err != nil {
		server.Close()
	}
	return nil
}

func (fe *frontend) routes() http.Handler {
	mux := http.NewServeMux()
	shop := map[string]http.HandlerFunc{
		"GET /{$}":            fe.home,
		"GET /product/{id}":   fe.product,
		"GET /cart":           fe.viewCart,
		"POST /cart":          fe.addToCart,
		"POST /cart/empty":    fe.emptyCart,
		"POST /setCurrency":   fe.setCurrency,
		"GET /logout":         fe.logout,
		"POST /cart/checkout": fe.checkout,
	}
	for pattern, handler := range shop {
		mux.Handle(pattern, fe.shopPage(handler))
	}
	mux.HandleFunc("GET /_healthz", healthz)
	mux.HandleFunc("GET /metrics", fe.metrics.serve)
	return fe.observed(mux)
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	if failingReadiness() {
		http.Error(w, "not ready (FAIL_READINESS=1)", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprint(w, "ok")
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// observed logs one line per request and counts it in /metrics.
func (fe *frontend) observed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started := time.Now()
		recorder := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(recorder, r)
		took := time.Since(started)
		route := routeOf(r)
		fe.metrics.observe(route, r.Method, recorder.code, took)
		log.Printf("http %s %s %d %s session=%s", r.Method, r.URL.Path, recorder.code, took.Round(time.Microsecond), sessionOf(r))
	})
}

// shopPage gives a shop route its session cookie and its CPU cost.
func (fe *frontend) shopPage(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie(sessionCookie); err != nil {
			id := newID()
			http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, MaxAge: cookieMaxAge, Path: "/"})
			r.AddCookie(&http.Cookie{Name: sessionCookie, Value: id})
		}
		burnCPU(fe.cpuMS)
		next(w, r)
	})
}

func sessionOf(r *http.Request) string {
	if c, err := r.Cookie(sessionCookie); err == nil {
		return c.Value
	}
	return "-"
}

func currencyOf(r *http.Request) string {
	if c, err := r.Cookie(currencyCookie); err == nil && slices.Contains(currencies, c.Value) {
		return c.Value
	}
	return defaultCurrency
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// backendsFailed calls the page's backends; when a required one fails it answers 500 and returns true.
func backendsFailed(w http.ResponseWriter, r *http.Request, required []string, optional ...string) bool {
	if err := callBackends(r.Context(), required...); err != nil {
		log.Printf("backend failed: %v", err)
		renderError(w, http.StatusInternalServerError, []string{err.Error()})
		return true
	}
	for _, variable := range optional {
		if err := callBackend(r.Context(), variable); err != nil {
			log.Printf("optional backend failed (page still served): %v", err)
		}
	}
	return false
}

func (fe *frontend) home(w http.ResponseWriter, r *http.Request) {
	if backendsFailed(w, r, homeBackends, adBackend) {
		return
	}
	currency := currencyOf(r)
	render(w, http.StatusOK, pageData{
		Currency: currency, Products: productRows(currency), CartSize: fe.carts.size(sessionOf(r)),
	})
}

func (fe *frontend) product(w http.ResponseWriter, r *http.Request) {
	p, ok := findProduct(r.PathValue("id"))
	if !ok {
		renderError(w, http.StatusNotFound, []string{"no product with id " + strconv.Quote(r.PathValue("id"))})
		return
	}
	if backendsFailed(w, r, productBackends, adBackend) {
		return
	}
	currency := currencyOf(r)
	render(w, http.StatusOK, pageData{
		Currency: currency, Products: []productRow{{p.id, p.name, money(p.priceUSD, currency)}},
		CartSize: fe.carts.size(sessionOf(r)),
	})
}

func (fe *frontend) viewCart(w http.ResponseWriter, r *http.Request) {
	if backendsFailed(w, r, cartBackends) {
		return
	}
	currency := currencyOf(r)
	items, totalUSD := fe.carts.items(sessionOf(r))
	render(w, http.StatusOK, pageData{
		Currency: currency, Items: cartRows(items, currency), Total: money(totalUSD, currency), CartSize: len(items),
	})
}

func (fe *frontend) addToCart(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("product_id")
	quantity, err := strconv.Atoi(r.PostFormValue("quantity"))
	var problems []string
	if _, ok := findProduct(id); !ok {
		problems = append(problems, "product_id must be one of the catalog's products")
	}
	if err != nil || quantity < 1 || quantity > 10 {
		problems = append(problems, "quantity must be 1-10")
	}
	if len(problems) > 0 {
		renderError(w, http.StatusUnprocessableEntity, problems)
		return
	}
	if backendsFailed(w, r, addBackends) {
		return
	}
	fe.carts.add(sessionOf(r), id, quantity)
	http.Redirect(w, r, "/cart", http.StatusFound)
}

func (fe *frontend) emptyCart(w http.ResponseWriter, r *http.Request) {
	if backendsFailed(w, r, emptyBackends) {
		return
	}
	fe.carts.empty(sessionOf(r))
	http.Redirect(w, r, "/", http.StatusFound)
}

func (fe *frontend) setCurrency(w http.ResponseWriter, r *http.Request) {
	code := r.PostFormValue("currency_code")
	if !slices.Contains(currencies, code) {
		renderError(w, http.StatusUnprocessableEntity, []string{"currency_code must be one of " + strings.Join(currencies, " ")})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: currencyCookie, Value: code, MaxAge: cookieMaxAge, Path: "/"})
	target := r.Header.Get("Referer")
	if target == "" {
		target = "/"
	}
	http.Redirect(w, r, target, http.StatusFound)
}

func (fe *frontend) logout(w http.ResponseWriter, r *http.Request) {
	fe.carts.empty(sessionOf(r))
	for _, c := range r.Cookies() {
		http.SetCookie(w, &http.Cookie{Name: c.Name, Value: "", MaxAge: -1, Path: "/"})
	}
	http.Redirect(w, r, "/", http.StatusFound)
}

func (fe *frontend) checkout(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		renderError(w, http.StatusUnprocessableEntity, []string{err.Error()})
		return
	}
	if problems := checkoutProblems(r.PostForm, time.Now()); len(problems) > 0 {
		renderError(w, http.StatusUnprocessableEntity, problems)
		return
	}
	if backendsFailed(w, r, checkoutBackends) {
		return
	}
	currency := currencyOf(r)
	_, totalUSD := fe.carts.items(sessionOf(r))
	fe.carts.empty(sessionOf(r))
	render(w, http.StatusOK, pageData{Currency: currency, OrderID: newID(), Total: money(totalUSD, currency)})
}

type productRow struct{ ID, Name, Price string }

type cartRow struct {
	ID, Name string
	Quantity int
	Price    string
}

type pageData struct {
	Currency, Total, OrderID string
	Products                 []productRow
	Items                    []cartRow
	CartSize                 int
	Problems                 []string
}

func productRows(currency string) []productRow {
	rows := make([]productRow, len(products))
	for i, p := range products {
		rows[i] = productRow{p.id, p.name, money(p.priceUSD, currency)}
	}
	return rows
}

func cartRows(items []cartItem, currency string) []cartRow {
	rows := make([]cartRow, len(items))
	for i, item := range items {
		rows[i] = cartRow{item.product.id, item.product.name, item.quantity, money(item.product.priceUSD*float64(item.quantity), currency)}
	}
	return rows
}

var pages = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><title>Online Boutique (stand-in)</title></head><body>
<h1>Online Boutique (stand-in)</h1>
<p><a href="/">Home</a> · <a href="/cart">Cart ({{.CartSize}})</a> · currency {{.Currency}}</p>
{{if .Problems}}<ul>{{range .Problems}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Products}}<ul>{{range .Products}}<li><a href="/product/{{.ID}}">{{.Name}}</a> {{.Price}}</li>{{end}}</ul>{{end}}
{{if .Items}}<ul>{{range .Items}}<li>{{.Quantity}} × <a href="/product/{{.ID}}">{{.Name}}</a> {{.Price}}</li>{{end}}</ul>{{end}}
{{if .Total}}<p>Total: {{.Total}}</p>{{end}}
{{if .OrderID}}<p>Your order is complete! Order id {{.OrderID}}</p>{{end}}
</body></html>
`))

func render(w http.ResponseWriter, code int, data pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := pages.Execute(w, data); err != nil {
		log.Printf("render: %v", err)
	}
}

func renderError(w http.ResponseWriter, code int, problems []string) {
	render(w, code, pageData{Currency: defaultCurrency, Problems: append([]string{http.StatusText(code)}, problems...)})
}

// routeOf is the route label of a request: its pattern without the method ("/product/{id}").
func routeOf(r *http.Request) string {
	if r.Pattern == "" {
		return "unmatched"
	}
	_, path, _ := strings.Cut(r.Pattern, " ")
	return strings.TrimSuffix(path, "{$}")
}
