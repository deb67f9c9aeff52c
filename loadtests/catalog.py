"""What the Online Boutique storefront sells and remembers (shared/reference/online-boutique.md).

No Locust import here: the reference frontend uses it without gevent's monkey-patching.
"""

import html

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
# Upstream's product names (products.json): a cart page may list a product by name rather than by id.
PRODUCT_NAMES = {
    "0PUK6V6EV0": "Candle Holder",
    "1YMWWN1N4O": "Watch",
    "2ZYFJ3GM2N": "Hairdryer",
    "66VCHSJNUP": "Tank Top",
    "6E92ZMYYFZ": "Mug",
    "9SIQT8TOJO": "Bamboo Glass Jar",
    "L9ECAV7KIM": "Loafers",
    "LS4PSXUNUM": "Salt & Pepper Shakers",
    "OLJCESPC7Z": "Sunglasses",
}
CURRENCIES = ("EUR", "USD", "JPY", "CAD", "GBP", "TRY")
SESSION_COOKIE = "shop_session-id"
CURRENCY_COOKIE = "shop_currency"


def page_lists(body: str, product: str) -> bool:
    """Whether a page lists ``product``: by id (upstream's cart shows "SKU #<id>" and links to the product)
    or by name (the lab's stand-in lists names; HTML escapes the "&" in "Salt & Pepper Shakers")."""
    name = PRODUCT_NAMES.get(product, product)
    return any(mark in body for mark in (product, name, html.escape(name)))
