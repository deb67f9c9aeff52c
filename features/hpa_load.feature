Feature: HPA under Locust load
  Locust drives the Online Boutique shopper journey against the storefront; the HPAs scale the frontend
  and currencyservice out while CPU rises and back in after the load stops: real requests through a
  LoadBalancer address, real CPU in the pods' cgroups, metrics-server and the HPA controller. HPA reaction
  times, Locust's per-endpoint table and the replicas second by second are in the report.

  Background:
    Given the platform is built through phase 7

  @phase7 @hpa @nightly
  Scenario: The frontend and currencyservice scale out under one load and back in when it stops
    Given the HPA of Deployment "frontend" holds 1 replica
    And the HPA of Deployment "currencyservice" holds 1 replica
    When Locust starts 150 users spawning 5 per second against the storefront
    Then the HPA scales Deployment "frontend" out to at least 3 replicas within 180 seconds
    And the HPA scales Deployment "currencyservice" out to at least 2 replicas within 180 seconds
    And every new replica of Deployment "frontend" is available within 60 seconds of being created
    And every new replica of Deployment "currencyservice" is available within 60 seconds of being created
    And Locust's p95 stays under the target's SLO for the next 30 seconds
    And Deployment "frontend" never has more than 5 replicas
    And Deployment "currencyservice" never has more than 4 replicas
    And fewer than 1% of Locust's requests failed
    When Locust stops
    Then the HPA scales Deployment "frontend" back in to 1 replica within 420 seconds
    And the HPA scales Deployment "currencyservice" back in to 1 replica within 420 seconds

  @phase7 @hpa @nightly
  Scenario: The frontend HPA stops at its maximum when the load exceeds it
    Given the HPA of Deployment "frontend" holds 1 replica
    When Locust starts 800 users spawning 20 per second against the storefront
    Then the HPA scales Deployment "frontend" out to at least 5 replicas within 300 seconds
    And Deployment "frontend" still has exactly 5 replicas after 30 seconds
    And the HPA of Deployment "frontend" reports ScalingLimited because it reached its maximum
    When Locust stops
    Then the HPA scales Deployment "frontend" back in to 1 replica within 420 seconds
