"""Locust load for the Online Boutique storefront.

``locustfile.py`` holds the shopper journey and a step-load shape (usable with plain ``locust -f``);
``runner.py`` runs it as a library from scenarios and returns a :class:`~loadtests.runner.LoadResult`;
``reference_frontend.py`` is a small storefront with the frontend's routes for tests and the benchmark;
``bench.py`` measures what one Locust process sustains here.
"""
