"""What the Online Boutique storefront sells and remembers (shared/reference/online-boutique.md).

No Locust import here: the reference frontend uses it without gevent's monkey-patching.
"""

PRODUCTS = (
    "0PUK6V6EV0",
    "1YMWWN1N4O",
    "2ZYFJ3GM2N",
    "66VCHSJNUP",
    "6E92ZMYYFZ",
    "9SIQT8TOJO",
    "L9ECAV7KIM",
    "LS4PSXUNUM",
    "OLJCESPC7Z",
)
CURRENCIES = ("EUR", "USD", "JPY", "CAD", "GBP", "TRY")
SESSION_COOKIE = "shop_session-id"
CURRENCY_COOKIE = "shop_currency"
