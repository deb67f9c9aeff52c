Feature: Chaos, resource shortage and bottleneck analysis
  Faults are injected only while the steady state holds, and are undone in reverse order on every exit
  path, also when a scenario fails; leftovers of interrupted runs are removed before a scenario starts.
  Under load the suite measures CPU, memory and latency per service and names the bottleneck in the
  report.

  @phase7 @nightly
  Scenario: Under load the report shows each service's CPU, memory and latency headroom
    Given the platform is built through phase 7
    When Locust starts 50 users spawning 5 per second against the storefront
    And the load runs for 120 seconds
    Then the report lists, for each of the 11 Boutique services, CPU usage against its request and limit, CPU throttling and memory working set against its limit
    And the report lists p50, p95 and p99 latency per storefront route as the shoppers measured it
    And the report names the service with the least CPU headroom, the one with the least memory headroom and the slowest route
    And no Boutique container is CPU-throttled in more than 25% of its periods
    And no Boutique container uses more than 90% of its memory limit
    And p95 latency of "GET /" stays under the target's SLO

  @phase7 @chaos @destructive @onprem_only @tolerates_outage
  Scenario: Extra latency in the product catalog shows up as the latency bottleneck
    Given the platform is built through phase 7
    And Locust is running 20 users against the storefront
    When a commit to gitops-repo sets EXTRA_LATENCY to "600ms" for Deployment "productcatalogservice"
    Then p95 latency of "GET /product/{id}" rises above 600 ms within 240 seconds
    And the report names "GET /product/{id}" as the slowest route
    And the alert "BoutiqueHighLatency" fires within 480 seconds
    When that commit is reverted in gitops-repo
    Then p95 latency of "GET /product/{id}" falls below 500 ms within 300 seconds

  @phase6 @chaos @destructive @keeps_serving
  Scenario: A CPU shortage leaves new pods Pending while the Boutique keeps running
    Given the platform is built through phase 6
    And every Boutique Deployment has all replicas available
    When stress pods raise the requested CPU of both workers to 100% of their allocatable CPU
    And a test Deployment of 2 replicas requesting 500m CPU each is created
    Then its pods stay Pending with the reason "Insufficient cpu" for 60 seconds
    And a message naming "BoutiquePodUnschedulable" appears in "#boutique-alerts" within 300 seconds
    And every Boutique Deployment still has all replicas available
    When the stress pods are deleted
    Then the test Deployment has 2 available replicas within 60 seconds

  @phase4 @chaos @destructive @tolerates_outage
  Scenario: Draining a worker moves the Boutique onto the other worker
    Given the platform is built through phase 4
    And the Application "online-boutique-dev" is Synced and Healthy
    When worker "k8s-worker2" is cordoned and drained
    Then every Boutique Deployment has all replicas available on "k8s-worker1" within 300 seconds
    And the Application "online-boutique-dev" is Synced and Healthy within 300 seconds
    When worker "k8s-worker2" is uncordoned
    Then a test Deployment with 4 replicas places pods on "k8s-worker2" within 60 seconds

  @phase7 @selfheal @chaos @destructive @tolerates_outage
  Scenario: Self-heal holds while the storefront is under load
    Given the platform is built through phase 7
    And Locust is running 20 users against the storefront
    When every pod of Deployment "cartservice" is force-deleted with a grace period of 0 seconds
    Then Deployment "cartservice" has all replicas available again within 90 seconds
    And Locust's requests succeed again within 30 seconds
    And fewer than 1% of Locust's requests fail in the 60 seconds after that

  @phase2 @chaos @destructive
  Scenario: Leftovers of an interrupted chaos run are removed before the next scenario
    Given the platform is built through phase 2
    And an earlier run was interrupted after cordoning "k8s-worker2" and starting a stress pod on it
    When a new scenario starts
    Then "k8s-worker2" is schedulable again and the stress pod is gone before any fault is injected
