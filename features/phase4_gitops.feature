Feature: Phase 4 - GitOps deployment of the Online Boutique
  gitops-repo holds a Kustomize base with one overlay per environment. Settings and credentials are split
  into ConfigMaps and Secrets. The Argo CD Application "online-boutique-dev" syncs the dev overlay into
  the namespace "boutique-dev" automatically, prunes what git no longer has, and heals changes made by hand.

  Background:
    Given the platform is built through phase 4

  @phase4 @nightly
  Scenario Outline: Each overlay of gitops-repo builds into valid manifests
    When kustomize builds "overlays/<overlay>" of gitops-repo
    Then every resource validates strictly against the schemas of the cluster's Kubernetes version
    And it has a Deployment and a Service for each of the 11 Online Boutique services
    And every namespaced resource is in the namespace "<namespace>"
    And every container runs as non-root, with a read-only root filesystem and CPU and memory limits

    Examples:
      | overlay | namespace     |
      | dev     | boutique-dev  |
      | prod    | boutique-prod |

  @phase4 @nightly
  Scenario: Settings live in ConfigMaps and credentials in Secrets
    When kustomize builds "overlays/dev" of gitops-repo
    Then the service addresses and ports reach the containers from ConfigMaps
    And no container sets a password, token or key as a literal env value
    And every Secret a Deployment refers to exists in the namespace "boutique-dev"

  @phase4 @nightly
  Scenario: The NetworkPolicies let every call of the Boutique through and keep the others out
    When the NetworkPolicies of "overlays/dev" are read for the namespace "boutique-dev"
    Then they allow every call the Online Boutique makes, and every service's DNS lookups
    And they refuse a pod of another namespace calling redis-cart, and the load generator calling a backend

  @phase4 @nightly
  Scenario: The Application syncs automatically, prunes and heals
    Then the Application "online-boutique-dev" syncs path "overlays/dev" of gitops-repo's "main" branch
    And its sync policy is automated with prune and selfHeal enabled
    And the Application "online-boutique-dev" is Synced and Healthy within 300 seconds

  @phase4 @nightly
  Scenario: A commit to gitops-repo reaches the cluster without a manual sync
    Given the Application "online-boutique-dev" is Synced and Healthy
    When a commit to gitops-repo adds the annotation "suite/run" with the run id to the frontend's ConfigMap
    Then Argo CD syncs that commit within 240 seconds without anyone asking it to
    And Argo CD heard of that commit from gitops-repo's push webhook
    And the frontend's ConfigMap in the cluster carries that annotation
    And Argo CD's page of the Application "online-boutique-dev" is captured as a screen after the sync

  @phase4 @nightly
  Scenario: A client on the LAN reaches the storefront through a LoadBalancer address
    When a LoadBalancer Service for the frontend is created
    Then it gets an external IP from "boutique-pool" within 30 seconds
    And the storefront answers at that Service's external IP within 60 seconds
    And the storefront's home page and a product page are captured as screens
