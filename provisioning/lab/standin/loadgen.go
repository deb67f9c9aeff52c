package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"time"
)

// runLoadGenerator runs USERS shoppers against FRONTEND_ADDR with the upstream task mix, each waiting
// 1–10 s (divided by RATE) between tasks. Without FRONTEND_ADDR it only waits to be stopped.
func runLoadGenerator(ctx context.Context, role string) error {
	address := strings.TrimSuffix(strings.TrimPrefix(os.Getenv("FRONTEND_ADDR"), "http://"), "/")
	if address == "" {
		log.Printf("%s: FRONTEND_ADDR is empty: idle", role)
		<-ctx.Done()
		return nil
	}
	users := max(envInt("USERS", 10), 1)
	rate := max(envInt("RATE", 1), 1)
	log.Printf("%s: %d users against %s", role, users, address)
	for range users {
		go shop(ctx, address, rate)
	}
	<-ctx.Done()
	return nil
}

type shopperTask struct {
	weight int
	run    func(s *shopper) (*http.Response, error)
}

var shopperTasks = []shopperTask{
	{1, func(s *shopper) (*http.Response, error) { return s.client.Get(s.url("/")) }},
	{2, func(s *shopper) (*http.Response, error) {
		return s.client.PostForm(s.url("/setCurrency"), url.Values{"currency_code": {pick(currencies)}})
	}},
	{10, func(s *shopper) (*http.Response, error) { return s.client.Get(s.url("/product/" + pick(productIDs))) }},
	{2, func(s *shopper) (*http.Response, error) {
		form := url.Values{"product_id": {pick(productIDs)}, "quantity": {fmt.Sprint(rand.IntN(10) + 1)}}
		return s.client.PostForm(s.url("/cart"), form)
	}},
	{3, func(s *shopper) (*http.Response, error) { return s.client.Get(s.url("/cart")) }},
	{1, func(s *shopper) (*http.Response, error) {
		return s.client.PostForm(s.url("/cart/checkout"), sampleOrder())
	}},
}

type shopper struct {
	client *http.Client
	base   string
}

func (s *shopper) url(path string) string { return s.base + path }

func shop(ctx context.Context, address string, rate int) {
	jar, _ := cookiejar.New(nil)
	s := &shopper{client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	total := 0
	for _, task := range shopperTasks {
		total += task.weight
	}
	for ctx.Err() == nil {
		target, err := resolve(address)
		if err == nil {
			s.base = "http://" + target
			runWeighted(s, rand.IntN(total))
		}
		wait := time.Duration(1000+rand.IntN(9000)) * time.Millisecond / time.Duration(rate)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

func runWeighted(s *shopper, draw int) {
	for _, task := range shopperTasks {
		if draw < task.weight {
			started := time.Now()
			resp, err := task.run(s)
			if err != nil {
				log.Printf("load: %v", err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			took := time.Since(started).Round(time.Millisecond)
			log.Printf("load: %s %s -> %d in %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, took)
			return
		}
		draw -= task.weight
	}
}

func pick(values []string) string { return values[rand.IntN(len(values))] }

func sampleOrder() url.Values {
	return url.Values{
		"email":                        {"someone@example.com"},
		"street_address":               {"1600 Amphitheatre Parkway"},
		"zip_code":                     {"94043"},
		"city":                         {"Mountain View"},
		"state":                        {"CA"},
		"country":                      {"United States"},
		"credit_card_number":           {"4432-8015-6152-6775"},
		"credit_card_expiration_month": {"1"},
		"credit_card_expiration_year":  {fmt.Sprint(time.Now().Year() + 1)},
		"credit_card_cvv":              {"672"},
	}
}
