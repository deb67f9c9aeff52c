Feature: Phase 7 - Terraform, Sealed Secrets, Locust and HPA
  Terraform describes the infrastructure it manages, Sealed Secrets keeps credentials in git encrypted,
  Locust replays the Online Boutique shopper journey, and HorizontalPodAutoscalers guard the services that
  run hot under load. On the lab target Terraform is only checked offline and the Sealed Secrets controller
  runs as a local process; Locust loads the stand-in storefront on the lab's real nodes.

  Background:
    Given the platform is built through phase 7

  @phase7 @nightly
  Scenario: The Terraform configuration is formatted and valid
    Then "terraform fmt -check" reports no change in any Terraform module
    And "terraform validate" passes for every Terraform module

  @phase7 @nightly
  Scenario: Terraform plans the three node VMs on a scratch libvirt
    Then "terraform plan" on an empty scratch libvirt lists exactly the node VMs, disks and network

  @phase7 @nightly @onprem_only
  Scenario: Terraform finds no drift on the platform it manages
    Then "terraform plan -detailed-exitcode" reports no changes for every Terraform module

  @phase7 @nightly
  Scenario: Sealed Secrets unseals a secret only in its own namespace
    Then the sealed-secrets controller is running
    And gitops-repo holds no Secret manifests, only SealedSecrets
    When a Secret holding the run id is sealed with kubeseal for "boutique-dev" and applied there
    Then the controller creates that Secret in "boutique-dev" with the same data within 30 seconds
    When the same SealedSecret is applied in another namespace
    Then the controller refuses to unseal it there

  @phase7 @nightly
  Scenario: A short headless Locust run covers the shopper journey
    When Locust starts 10 users spawning 2 per second against the storefront
    Then every shopper task runs at least once within 60 seconds: home, set currency, browse product, add to cart, view cart, checkout
    And fewer than 1% of Locust's requests failed

  @phase7 @hpa @nightly
  Scenario: HPAs guard the frontend and currencyservice
    Then these HorizontalPodAutoscalers exist in "boutique-dev":
      | deployment      | min replicas | max replicas | target CPU |
      | frontend        | 1            | 5            | 70%        |
      | currencyservice | 1            | 4            | 70%        |
    And each of them reports ScalingActive with its current CPU utilisation within 120 seconds
    And Argo CD ignores the replicas of those Deployments, so it does not fight the HPAs
