Feature: Rolling update when an image tag changes in gitops-repo
  A new image tag committed to gitops-repo rolls out without dropping available replicas. A rollout is
  finished only when every replica is updated and available and no pod of the old ReplicaSet is left.
  A tag that cannot be pulled stops the rollout while the old pods keep serving, and reverting the commit
  rolls it back. Every commit the suite makes is reverted afterwards. Rollout times are recorded in the report.

  Background:
    Given the platform is built through phase 4
    And the Application "online-boutique-dev" is Synced and Healthy

  @phase4 @rollout @nightly
  Scenario: A new image tag rolls out with no drop in available replicas
    When a commit to gitops-repo changes the image tag of Deployment "frontend" to another tag that exists in the registry
    Then Argo CD syncs that commit within 240 seconds
    And the rollout of Deployment "frontend" finishes within 180 seconds
    And the available replicas of Deployment "frontend" never dropped below the desired count during the rollout
    And the Application "online-boutique-dev" is Synced and Healthy within 60 seconds

  @phase4 @rollout @nightly @onprem_only
  Scenario: The storefront answers during a rolling update
    Given a probe requests "http://boutique.local/" through the ingress VIP 5 times per second
    When a commit to gitops-repo changes the image tag of Deployment "frontend" to another tag that exists in the registry
    Then the rollout of Deployment "frontend" finishes within 180 seconds
    And at least 99.5% of the probe requests during the rollout got HTTP 200

  @phase4 @rollout @chaos @destructive @keeps_serving
  Scenario: A tag that cannot be pulled stops the rollout and a revert rolls it back
    When a commit to gitops-repo changes the image tag of Deployment "frontend" to "does-not-exist"
    Then a new pod of Deployment "frontend" reports ImagePullBackOff within 120 seconds
    And the old pods of Deployment "frontend" stay available
    And the Application "online-boutique-dev" is Degraded within 240 seconds, once the frontend's progress deadline has passed
    When that commit is reverted in gitops-repo
    Then the rollout of Deployment "frontend" finishes within 240 seconds with the previous image
    And the Application "online-boutique-dev" is Synced and Healthy within 60 seconds

  @phase4 @rollout @chaos @destructive @tolerates_outage
  Scenario: A rollback to the previous history entry runs with auto-sync suspended
    Given a commit to gitops-repo changed the image tag of Deployment "frontend" and Argo CD deployed it
    When auto-sync of the Application "online-boutique-dev" is suspended
    And the Application "online-boutique-dev" is rolled back to its previous history entry
    Then Deployment "frontend" runs its previous image again within 60 seconds
    And Argo CD's page of the Application "online-boutique-dev" is captured as a screen after the rollback
    And the Application "online-boutique-dev" stays OutOfSync with gitops-repo for 20 seconds while auto-sync is suspended
    When auto-sync of the Application "online-boutique-dev" is restored
    Then the Application "online-boutique-dev" is Synced and Healthy within 120 seconds
