Feature: Drift recovery after a wrong change made by hand
  A change made with kubectl instead of through gitops-repo is drift. Argo CD's self-heal puts the live
  state back to what gitops-repo says; with self-heal off, Argo CD only reports the drift. Every change is
  undone after the scenario, also when it fails. Recovery times are recorded in the report.

  Background:
    Given the platform is built through phase 4
    And the Application "online-boutique-dev" is Synced and Healthy

  @phase4 @drift @chaos @destructive @tolerates_outage
  Scenario Outline: Argo CD reverts a wrong change made by hand
    When someone <change> by hand
    Then Deployment "<deployment>" matches gitops-repo again within <seconds> seconds
    And the Application "online-boutique-dev" is Synced and Healthy within <seconds> seconds
    And the Application's last sync was started automatically after the change

    Examples:
      | change                                                                                         | deployment            | seconds |
      | scales Deployment "paymentservice" to 5 replicas                                                | paymentservice        | 60      |
      | sets the image of Deployment "checkoutservice" to "registry.local/boutique/checkoutservice:wrong" | checkoutservice       | 90      |
      | deletes Deployment "emailservice"                                                              | emailservice          | 120     |
      | changes the label "app.kubernetes.io/part-of" of Deployment "cartservice" to "tampered"        | cartservice           | 60      |

  @phase4 @drift @chaos @destructive @tolerates_outage
  Scenario: With self-heal off, Argo CD reports the drift and leaves it in place
    Given self-heal is switched off for the Application "online-boutique-dev"
    When someone scales Deployment "paymentservice" to 3 replicas by hand
    Then the Application "online-boutique-dev" is OutOfSync within 60 seconds
    # Self-heal reverts this change in seconds when it is on (the Outline above; Argo CD's first self-heal
    # back-off is 2 s on-prem, 1 s in the lab), so 20 seconds untouched shows it is off.
    And Deployment "paymentservice" still has 3 replicas after 20 seconds
    When self-heal is switched on again for the Application "online-boutique-dev"
    Then Deployment "paymentservice" is back to 1 replica within 60 seconds
