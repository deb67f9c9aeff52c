Feature: Validation of the running Online Boutique
  The end-to-end checks of the validation plan: every service deployed, the storefront reachable from
  outside through the Ingress, Argo CD's sync status and history, dashboards with data, and load
  generation that the platform can see.

  @phase4 @nightly
  Scenario: All Online Boutique services are deployed and available
    Given the platform is built through phase 4
    Then these Deployments in "boutique-dev" have all replicas available and their Services have ready endpoints:
      | deployment            | service port |
      | frontend              | 80           |
      | cartservice           | 7070         |
      | productcatalogservice | 3550         |
      | currencyservice       | 7000         |
      | paymentservice        | 50051        |
      | shippingservice       | 50051        |
      | emailservice          | 5000         |
      | checkoutservice       | 5050         |
      | recommendationservice | 8080         |
      | adservice             | 9555         |
      | redis-cart            | 6379         |
    And no Boutique pod is Pending or in CrashLoopBackOff

  @phase4 @nightly @onprem_only
  Scenario: The storefront is reachable from outside through the Ingress
    Given the platform is built through phase 4
    Then the Ingress "frontend" for host "boutique.local" has the ingress VIP as its address
    And "http://boutique.local/" answers through the VIP with HTTP 200 and the Online Boutique home page within 5 seconds
    And "http://boutique.local/product/OLJCESPC7Z" answers through the VIP with HTTP 200
    And "http://boutique.local/_healthz" answers through the VIP with "ok"
    And the storefront's home page and a product page are captured as screens

  @phase4 @nightly
  Scenario: Argo CD shows the Application's sync status and history
    Given the platform is built through phase 4
    Then the Application "online-boutique-dev" is Synced to the head commit of gitops-repo's "main" branch and Healthy
    And every resource of the Application "online-boutique-dev" is Synced
    And the history of the Application "online-boutique-dev" lists each deployed revision with its commit, time and source path

  @phase6 @nightly
  Scenario: Every Grafana dashboard panel shows data
    Given the platform is built through phase 6
    And the storefront has received requests in the last 5 minutes
    Then every Prometheus panel of the dashboards "Online Boutique overview", "Online Boutique resources" and "Cluster nodes" returns data for the last 5 minutes

  @phase7 @nightly
  Scenario: Locust generates shopper load that the platform sees
    Given the platform is built through phase 7
    When Locust starts 50 users spawning 5 per second against the storefront
    And the load runs for 120 seconds
    Then Locust sustains at least 5 requests per second with fewer than 1% failures
    And Prometheus shows ingress-nginx requests for "boutique.local" within 20% of Locust's request rate
