Feature: Phase 0 - foundation hosts
  The four hosts of the plan (three cluster nodes and the mini PC that runs GitLab) keep fixed addresses,
  know each other by name, agree on the time and have the resources the later phases need.
  The addresses come from the target file. The lab target has no such hosts, so these scenarios
  run only against real hosts.

  Background:
    Given the platform is built through phase 0
    And the hosts of the plan:
      | host        | role          | also known as                |
      | k8s-master  | control-plane |                              |
      | k8s-worker1 | worker        |                              |
      | k8s-worker2 | worker        |                              |
      | gitlab      | platform      | gitlab.local, registry.local |

  @phase0 @nightly @onprem_only
  Scenario: Hosts keep static addresses and resolve each other through /etc/hosts
    Then every host has the IPv4 address the target file gives it, configured statically and not by DHCP
    And every host resolves the name of every other host to that address through /etc/hosts
    And every cluster node resolves "gitlab.local" and "registry.local" to the gitlab host
    And every host reaches every other host by name with ping

  @phase0 @nightly @onprem_only
  Scenario: Host clocks are synchronised by chrony
    Then chronyd is active and enabled on every host
    And chrony reports every host as synchronised with a system clock offset below 100 ms
    And the clocks of any two hosts differ by less than 500 ms

  @phase0 @nightly @onprem_only
  Scenario Outline: Each host has the CPU, memory and disk the plan needs
    Then host "<host>" has at least <cpus> CPUs
    And host "<host>" has at least <memory> GiB of memory, allowing 5% for the kernel and firmware
    And host "<host>" has at least <disk> GiB free on the filesystem that holds "<path>"

    Examples:
      | host        | cpus | memory | disk | path                |
      | k8s-master  | 2    | 4      | 30   | /var/lib/containerd |
      | k8s-worker1 | 4    | 8      | 50   | /var/lib/containerd |
      | k8s-worker2 | 4    | 8      | 50   | /var/lib/containerd |
      | gitlab      | 4    | 8      | 100  | /srv/gitlab         |

  @phase0 @nightly @onprem_only
  Scenario: Cluster nodes meet kubeadm's host prerequisites
    Then swap is off on k8s-master, k8s-worker1 and k8s-worker2
    And the kernel modules "overlay" and "br_netfilter" are loaded on each of them
    And the sysctls "net.ipv4.ip_forward" and "net.bridge.bridge-nf-call-iptables" are 1 on each of them
