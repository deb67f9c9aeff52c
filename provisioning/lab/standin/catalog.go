package main

import (
	"fmt"
	"slices"
)

type product struct {
	id, name string
	priceUSD float64
}

var products = []product{
	{"OLJCESPC7Z", "Sunglasses", 19.99},
	{"66VCHSJNUP", "Tank Top", 18.99},
	{"1YMWWN1N4O", "Watch", 109.99},
	{"L9ECAV7KIM", "Loafers", 89.99},
	{"2ZYFJ3GM2N", "Hairdryer", 24.99},
	{"0PUK6V6EV0", "Candle Holder", 18.99},
	{"LS4PSXUNUM", "Salt & Pepper Shakers", 18.49},
	{"9SIQT8TOJO", "Bamboo Glass Jar", 5.49},
	{"6E92ZMYYFZ", "Mug", 8.99},
}

var productIDs = func() []string {
	ids := make([]string, len(products))
	for i, p := range products {
		ids[i] = p.id
	}
	return ids
}()

// eurRates are upstream currencyservice's rates: units of each currency per euro.
var eurRates = map[string]float64{
	"EUR": 1.0, "USD": 1.1305, "JPY": 126.40, "CAD": 1.5128, "GBP": 0.85970, "TRY": 6.1247,
}

var currencies = []string{"EUR", "USD", "JPY", "CAD", "GBP", "TRY"}

const defaultCurrency = "USD"

func findProduct(id string) (product, bool) {
	i := slices.IndexFunc(products, func(p product) bool { return p.id == id })
	if i < 0 {
		return product{}, false
	}
	return products[i], true
}

func money(usd float64, currency string) string {
	return fmt.Sprintf("%.2f %s", usd/eurRates["USD"]*eurRates[currency], currency)
}
