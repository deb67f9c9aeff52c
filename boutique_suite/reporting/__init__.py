"""What the report shows: Allure evidence (``evidence``), why a layer is broken, screens of the platform's
own pages, charts, the timing table, traceability, flakiness over runs, the resilience summary, the first
page, the nightly message, and the CI/CD trace.

May import: ``run``, ``clients``, ``context``."""
