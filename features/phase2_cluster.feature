Feature: Phase 2 - Kubernetes cluster
  A kubeadm cluster of one control plane (k8s-master) and two workers (k8s-worker1, k8s-worker2) with a
  pod network, a default StorageClass, the metrics API, and containerd trusting the private registry.
  On the lab target the nodes are real kubelets with containerd in network namespaces of their own, running
  the project's stand-in images (KWOK's simulated nodes only where this machine cannot run real ones).

  Background:
    Given the platform is built through phase 2

  @phase2 @nightly
  Scenario: The three nodes are Ready with their roles and taint
    Then nodes "k8s-master", "k8s-worker1" and "k8s-worker2" are Ready
    And node "k8s-master" has the label "node-role.kubernetes.io/control-plane" and the taint "node-role.kubernetes.io/control-plane:NoSchedule"
    And nodes "k8s-worker1" and "k8s-worker2" have the label "node-role.kubernetes.io/worker" and no NoSchedule taint

  # The lab's three kubelets share one machine, so each reports that machine's CPUs and memory.
  @phase2 @nightly @onprem_only
  Scenario: The workers report the capacity the plan sizes them for
    Then nodes "k8s-worker1" and "k8s-worker2" each have a capacity of 4 CPU, 8 GiB of memory (within 5%) and 110 pods

  @phase2 @nightly
  Scenario: The kubeadm cluster has a pod network
    Then the API server answers "/readyz" with "ok"
    And no node reports the condition NetworkUnavailable
    And every node has its own pod CIDR inside the pod network "10.244.0.0/16"

  @phase2 @nightly
  Scenario: A default StorageClass exists
    Then exactly one StorageClass is marked as the default
    And a PersistentVolumeClaim created without a storageClassName is given that StorageClass

  @phase2 @nightly @onprem_only
  Scenario: containerd on every node trusts the private registry's CA
    Then containerd on every node has a hosts.toml for "registry.local" that names the registry CA
    And every node pulls "registry.local/boutique/suite-probe" with crictl without skipping TLS verification

  @phase2 @nightly
  Scenario: A Deployment of 3 replicas runs only on the workers
    When a test Deployment with 3 replicas is created
    Then it has 3 available replicas within 60 seconds
    And none of its pods runs on "k8s-master"

  @phase2 @nightly
  Scenario: A deleted pod is replaced by its ReplicaSet
    Given a test Deployment with 3 available replicas
    When one of its pods is deleted
    Then its ReplicaSet creates a replacement and the Deployment has 3 available replicas again within 30 seconds

  @phase2 @nightly
  Scenario: The metrics API serves node and pod usage
    Given a test Deployment with 2 available replicas
    Then "kubectl top nodes" shows CPU and memory usage for all 3 nodes within 90 seconds
    And "kubectl top pods" shows CPU and memory usage for both pods of the test Deployment within 90 seconds

  @phase2 @hpa @nightly
  Scenario: An HPA scales a test Deployment out when CPU rises and in when it falls
    Given a test Deployment with 1 replica requesting 200m CPU
    And an HPA on it targeting 50% CPU with 1 to 4 replicas and a scale-down window of 30 seconds
    When each of its pods uses 180m CPU
    Then the HPA scales it out to at least 3 replicas within 120 seconds
    When each of its pods uses 10m CPU
    Then the HPA scales it back in to 1 replica within 180 seconds
