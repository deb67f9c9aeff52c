Feature: Phase 5 - CI/CD from app-repo to the cluster
  A push to app-repo builds each changed service from a multi-stage Dockerfile, pushes the image tagged
  with the commit's short SHA to the private registry and writes that tag into gitops-repo with
  "kustomize edit set image"; Argo CD then deploys it. Pods pull through the imagePullSecret on their
  ServiceAccount, and the registry refuses a pull without it. On the lab target gitlab-ci-local runs the same
  jobs of .gitlab-ci.yml in the shell: the build job with the lab's own buildkitd (app-repo's frontend is the
  stand-in's Go source there), the push job with crane. The lab's registry.local demands credentials as
  GitLab's registry does.

  Background:
    Given the platform is built through phase 5

  @phase5 @nightly
  Scenario: Service images are built in multiple stages
    Then every service's Dockerfile in app-repo has a build stage and a separate final stage
    And no final stage starts from a compiler or SDK image
    And every final stage runs as a non-root user

  @phase5 @nightly
  Scenario: The deploy job writes the new tag into gitops-repo with kustomize edit set image
    When the "update-gitops" job runs for service "frontend" at commit "0123abcd" against a scratch copy of gitops-repo
    Then the scratch gitops-repo gets one new commit that names app-repo commit "0123abcd"
    And in that commit "overlays/dev/kustomization.yaml" sets image "registry.local/boutique/frontend" to tag "0123abcd"
    And that commit changes no other file

  @phase5 @nightly
  Scenario: A commit to app-repo ships an image tagged with its commit SHA
    When a commit that changes "src/frontend" is pushed to app-repo's "main" branch
    Then its pipeline's "update-gitops" job succeeds within 300 seconds
    And that job's log is captured as a screen
    And gitops-repo's dev overlay sets the frontend image to that commit's short SHA in a commit that names it
    And Argo CD syncs that commit within 120 seconds without anyone asking it to
    And Deployment "frontend" in "boutique-dev" runs that image within 300 seconds of the pipeline's end
    And the trace from the app-repo commit to the running ReplicaSet is attached to the report

  @phase5 @nightly
  Scenario: The pipeline builds and pushes the changed service's image to the registry
    When a commit that changes "src/frontend" is pushed to app-repo's "main" branch
    Then its pipeline's "build" and "push" jobs succeed within 900 seconds
    And the registry holds "registry.local/boutique/frontend" tagged with that commit's short SHA

  @phase5 @nightly
  Scenario: ServiceAccounts pull from the private registry with an imagePullSecret
    Then every ServiceAccount in "boutique-dev", including "default", lists the imagePullSecret "registry-credentials"
    And "registry-credentials" is a Secret of type "kubernetes.io/dockerconfigjson" for "registry.local"
    And a pod created with one of those ServiceAccounts and no pull secret of its own is given "registry-credentials"

  @phase5 @nightly
  Scenario: The private registry serves its images only to pods with the pull secret
    When a pod in "boutique-dev" whose ServiceAccount has no pull secret must pull "registry.local/boutique/suite-probe:v1"
    Then the node's pull fails with an authentication error within 60 seconds
    When a pod naming the pull secret "registry-credentials" must pull the same image
    Then that pod runs within 60 seconds
