Feature: Self-heal after pods are killed
  When pods of the Online Boutique are killed, Kubernetes replaces them and Argo CD reports the
  Application Healthy again without anyone touching it. Faults are injected only while the Application is
  Synced and Healthy. Recovery times are recorded in the report.

  Background:
    Given the platform is built through phase 4
    And the Application "online-boutique-dev" is Synced and Healthy

  @phase4 @selfheal @chaos @destructive @tolerates_outage
  Scenario Outline: Force-deleted pods of a Deployment come back on their own
    When every pod of Deployment "<deployment>" is force-deleted with a grace period of 0 seconds
    Then Deployment "<deployment>" has all replicas available again within <seconds> seconds
    And the Application "online-boutique-dev" is Synced and Healthy within <seconds> seconds
    And the Application "online-boutique-dev" was never OutOfSync meanwhile

    Examples:
      | deployment            | seconds |
      | frontend              | 60      |
      | cartservice           | 90      |
      | productcatalogservice | 60      |
      | redis-cart            | 60      |

  @phase4 @selfheal @chaos @destructive @keeps_serving
  Scenario: The Boutique keeps running while the Argo CD application controller restarts
    When the Argo CD application controller is stopped for 60 seconds and then started again
    Then every Boutique Deployment kept all replicas available throughout
    And the Application "online-boutique-dev" is Synced and Healthy within 120 seconds of the restart
