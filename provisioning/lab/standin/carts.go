package main

import "sync"

type cartItem struct {
	product  product
	quantity int
}

// carts keeps each session's cart in memory (the stand-in's cartservice holds nothing).
type carts struct {
	mu      sync.Mutex
	content map[string]map[string]int
}

func newCarts() *carts { return &carts{content: map[string]map[string]int{}} }

func (c *carts) add(session, productID string, quantity int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.content[session] == nil {
		c.content[session] = map[string]int{}
	}
	c.content[session][productID] += quantity
}

func (c *carts) empty(session string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.content, session)
}

func (c *carts) size(session string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for _, quantity := range c.content[session] {
		total += quantity
	}
	return total
}

func (c *carts) items(session string) ([]cartItem, float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var items []cartItem
	total := 0.0
	for _, p := range products {
		if quantity := c.content[session][p.id]; quantity > 0 {
			items = append(items, cartItem{p, quantity})
			total += p.priceUSD * float64(quantity)
		}
	}
	return items, total
}
