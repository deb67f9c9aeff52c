Feature: Phase 1 - GitLab, container registry and runner
  The mini PC runs GitLab, its container registry behind a certificate from the platform's own CA, and
  a GitLab Runner. Application code (app-repo) and deployment manifests (gitops-repo) live in two
  repositories. On the lab target a smart-HTTP git server and an OCI registry that demands credentials,
  with a certificate from the same CA, stand in for GitLab; GitLab's own health and its runner exist only
  on real hosts.

  Background:
    Given the platform is built through phase 1

  @phase1 @nightly @onprem_only
  Scenario: GitLab is up and passes its health checks
    Then "https://gitlab.local/-/readiness" reports status "ok" for every check within 10 seconds
    And the GitLab API answers "/api/v4/version" with the version pinned in the target file
    And the group "boutique" holds the projects "app-repo" and "gitops-repo"

  @phase1 @nightly
  Scenario: The container registry stores and serves an image
    When a small test image is pushed to "registry.local/boutique/suite-probe" tagged with the run id
    Then the registry's catalog lists "boutique/suite-probe" with that tag
    And pulling that tag back returns the digest that was pushed

  @phase1 @nightly
  Scenario: The registry presents a certificate from the platform CA
    Then "registry.local" presents a certificate issued by the registry CA the target file names
    And the certificate is valid for the name "registry.local" for at least 30 more days
    And a client that trusts only the registry CA connects without turning verification off
    And a client that trusts only the public CAs refuses the connection

  @phase1 @nightly @onprem_only
  Scenario: The GitLab Runner is registered and online
    Then a runner with the tag "boutique" is registered for the project "app-repo"
    And GitLab reports that runner "online" and not paused
    And that runner contacted GitLab within the last 120 seconds

  @phase1 @nightly
  Scenario: Application code and deployment manifests live in separate repositories
    Then "app-repo" holds each service's source, its Dockerfile and a .gitlab-ci.yml, and no Kubernetes manifests
    And "gitops-repo" holds "base/" and "overlays/", and no application source or Dockerfile
    And both repositories clone over HTTPS with the credentials the target file names
