Feature: Phase 3 - MetalLB, ingress-nginx and Argo CD
  MetalLB hands out addresses from an L2 pool, ingress-nginx takes its VIP from that pool, and Argo CD
  runs behind an Ingress with its own credentials for gitops-repo. The pool's address range and the
  ingress VIP come from the target file. On the lab target MetalLB's controller assigns addresses from the lab
  bridge's subnet and its speakers on the real nodes announce them (ARP); ingress-nginx's controller is not in
  the lab (only its Service), and Argo CD is installed from its pinned install.yaml into the cluster by the
  same code as on-prem, its images pulled under their upstream names through the lab's registry mirror.

  Background:
    Given the platform is built through phase 3

  @phase3 @nightly
  Scenario: MetalLB hands out addresses from its L2 pool
    Then the IPAddressPool "boutique-pool" holds the address range the target file gives
    And an L2Advertisement announces "boutique-pool"
    When a test Service of type LoadBalancer is created
    Then it gets an external IP from "boutique-pool" within 30 seconds

  @phase3 @nightly
  Scenario: ingress-nginx gets its VIP from the pool
    Then the ingress-nginx controller has all replicas available
    And the Service "ingress-nginx-controller" has an external IP from "boutique-pool"
    And that IP is the ingress VIP the target file expects

  @phase3 @nightly
  Scenario: Argo CD runs behind its Ingress
    Then the Argo CD server, repo-server, application controller and redis are running
    And the Ingress "argocd-server" sends host "argocd.local" to the Service "argocd-server"
    And the Argo CD API answers with its version and accepts the admin login from the target's secret

  @phase3 @nightly
  Scenario: Argo CD reads gitops-repo with its own credentials
    Then Argo CD has a repository Secret for "gitops-repo" labelled "argocd.argoproj.io/secret-type: repository"
    And Argo CD reports its connection to "gitops-repo" as "Successful"
    And Argo CD verifies the Git server's certificate with the platform CA, without the insecure flag
