"""What makes the lab's machines: the network (namespaces, the bridge, the forward), the nodes (cgroups,
containerd, kubelet, kube-proxy) and the Debian machines of the Ansible role tests.

Never imports ``provisioning.lab.services``: the machines come first, the services run on them."""
