Feature: HPA under Locust load
  Locust drives the Online Boutique shopper journey against the storefront; the HPAs scale the frontend
  and currencyservice out while CPU rises and back in after the load stops: real requests through a
  LoadBalancer address, real CPU in the pods' cgroups, metrics-server and the HPA controller. HPA reaction
  times, Locust's per-endpoint table and the replicas second by second are in the report.

  Background:
    Given the platform is built through phase 7

  @phase7 @hpa @nightly
  Scenario Outline: A Deployment scales out under load and back in when the load stops
    Given the HPA of Deployment "<deployment>" holds <min> replica
    When Locust starts <users> users spawning 5 per second against the storefront
    Then the HPA scales Deployment "<deployment>" out to at least <out> replicas within 180 seconds
    And every new replica of Deployment "<deployment>" is available within 60 seconds of being created
    And Locust's p95 stays under the target's SLO for the next 30 seconds
    And Deployment "<deployment>" never has more than <max> replicas
    And fewer than 1% of Locust's requests failed
    When Locust stops
    Then the HPA scales Deployment "<deployment>" back in to <min> replica within 420 seconds

    Examples:
      | deployment      | users | min | out | max |
      | frontend        | 150   | 1   | 3   | 5   |
      | currencyservice | 150   | 1   | 2   | 4   |

  @phase7 @hpa @nightly
  Scenario: The frontend HPA stops at its maximum when the load exceeds it
    Given the HPA of Deployment "frontend" holds 1 replica
    When Locust starts 800 users spawning 20 per second against the storefront
    Then the HPA scales Deployment "frontend" out to at least 5 replicas within 300 seconds
    And Deployment "frontend" still has exactly 5 replicas after 30 seconds
    And the HPA of Deployment "frontend" reports ScalingLimited because it reached its maximum
    When Locust stops
    Then the HPA scales Deployment "frontend" back in to 1 replica within 420 seconds
