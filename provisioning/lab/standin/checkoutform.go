package main

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	emailPattern  = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	digitsPattern = regexp.MustCompile(`^[0-9]+$`)
)

// checkoutProblems lists what is wrong with a checkout form (the real frontend's validation rules).
func checkoutProblems(form url.Values, now time.Time) []string {
	var problems []string
	field := func(name string) string { return strings.TrimSpace(form.Get(name)) }
	for _, name := range []string{"email", "street_address", "zip_code", "city", "state", "country",
		"credit_card_number", "credit_card_expiration_month", "credit_card_expiration_year", "credit_card_cvv"} {
		if field(name) == "" {
			problems = append(problems, name+" is required")
		}
	}
	if email := field("email"); email != "" && !emailPattern.MatchString(email) {
		problems = append(problems, "email is not an email address")
	}
	if zip := field("zip_code"); zip != "" && !digitsPattern.MatchString(zip) {
		problems = append(problems, "zip_code must be a number")
	}
	if card := field("credit_card_number"); card != "" && !validCard(card) {
		problems = append(problems, "credit_card_number is not a valid card number")
	}
	month, year := field("credit_card_expiration_month"), field("credit_card_expiration_year")
	problems = append(problems, expiryProblems(month, year, now)...)
	if cvv := field("credit_card_cvv"); cvv != "" && (!digitsPattern.MatchString(cvv) || len(cvv) < 3 || len(cvv) > 4) {
		problems = append(problems, "credit_card_cvv must be 3 or 4 digits")
	}
	return problems
}

func expiryProblems(monthText, yearText string, now time.Time) []string {
	var problems []string
	if month, err := strconv.Atoi(monthText); monthText != "" && (err != nil || month < 1 || month > 12) {
		problems = append(problems, "credit_card_expiration_month must be 1-12")
	}
	if year, err := strconv.Atoi(yearText); yearText != "" && (err != nil || year < now.Year()) {
		problems = append(problems, fmt.Sprintf("credit_card_expiration_year must be %d or later", now.Year()))
	}
	return problems
}

// validCard accepts 12–19 digits, spaces and dashes allowed. No Luhn check: upstream's own load
// generator pays with 4432-8015-6152-6775, which fails it.
func validCard(number string) bool {
	digits := strings.NewReplacer(" ", "", "-", "").Replace(number)
	return digitsPattern.MatchString(digits) && len(digits) >= 12 && len(digits) <= 19
}
