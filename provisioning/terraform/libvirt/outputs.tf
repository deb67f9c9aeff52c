output "ansible_hosts" {
  description = "Ansible inventory hosts: node name -> ansible_host and ansible_user."
  value = {
    for name, node in var.nodes : name => {
      ansible_host = node.address
      ansible_user = var.ssh_user
    }
  }
}

output "network" {
  description = "The nodes' network: CIDR and gateway (the hypervisor host's address on it)."
  value = {
    cidr    = var.network.cidr
    gateway = local.gateway
  }
}
