Feature: Alerts reach Slack
  Alert rules are unit-tested offline with promtool. Live, a fault is injected, the suite confirms in a
  metric that it took effect, waits for the alert in Alertmanager and finds a message naming it in the
  Slack channel "#boutique-alerts"; once the fault is removed, a resolved message follows. Node shortage
  is measured as the share of a node's allocatable CPU or memory that pods request, so it is real on
  the lab target too. Alert latency is recorded in the report.

  Background:
    Given the platform is built through phase 6

  @phase6 @alerts @nightly
  Scenario: The alert rules pass their promtool unit tests
    Then promtool accepts every rule file of the platform
    And promtool's unit tests show each alert firing on its condition and staying quiet without it:
      | alert                      | fires when                                                            | for |
      | BoutiquePodCrashLooping    | a container in "boutique-dev" restarts more than 2 times in 5 minutes | 1m  |
      | BoutiqueNodeCPUShortage    | pods request more than 90% of a node's allocatable CPU                | 2m  |
      | BoutiqueNodeMemoryShortage | pods request more than 90% of a node's allocatable memory             | 2m  |
      | BoutiquePodUnschedulable   | a pod stays Pending because no node has enough CPU or memory          | 2m  |
      | BoutiqueHighLatency        | p95 latency of the storefront through ingress-nginx is above 500 ms   | 5m  |

  @phase6 @alerts @chaos @destructive @keeps_serving
  Scenario: A crash-looping pod raises a Slack alert
    When a pod "crash-probe" that exits with code 1 on every start runs in "boutique-dev"
    Then Prometheus sees the restart count of "crash-probe" rise above 2 within 180 seconds
    And the alert "BoutiquePodCrashLooping" fires for "crash-probe" within 300 seconds
    And a message naming "BoutiquePodCrashLooping" and "crash-probe" appears in "#boutique-alerts" within 60 seconds of the alert firing
    And that Slack message in "#boutique-alerts" is captured as a screen
    When the pod "crash-probe" is deleted
    Then a resolved message for "BoutiquePodCrashLooping" appears in "#boutique-alerts" within 360 seconds

  @phase6 @alerts @chaos @destructive @keeps_serving
  Scenario Outline: A worker running short of CPU or memory raises a Slack alert
    When stress pods raise the requested <resource> of "k8s-worker2" to 95% of its allocatable <resource>
    Then Prometheus sees more than 90% of the allocatable <resource> of "k8s-worker2" requested within 120 seconds
    And the alert "<alert>" fires for node "k8s-worker2" within 300 seconds
    And a message naming "<alert>" and "k8s-worker2" appears in "#boutique-alerts" within 60 seconds of the alert firing
    When the stress pods are deleted
    Then a resolved message for "<alert>" appears in "#boutique-alerts" within 360 seconds

    Examples:
      | resource | alert                      |
      | CPU      | BoutiqueNodeCPUShortage    |
      | memory   | BoutiqueNodeMemoryShortage |
