variable "libvirt_uri" {
  description = "libvirt connection URI of the hypervisor host (qemu:///system, qemu+ssh://user@host/system)."
  type        = string
  default     = "qemu:///system"

  validation {
    condition     = can(regex("^[a-z][a-z0-9+]*://", var.libvirt_uri))
    error_message = "libvirt_uri must be a libvirt URI such as qemu:///system."
  }
}

variable "pool" {
  description = "libvirt storage pool for the base image, the node disks and the cloud-init ISOs."
  type        = string
  default     = "default"
}

variable "base_image" {
  description = "Debian 12 cloud image (qcow2): an absolute path on the hypervisor host or an http(s) URL."
  type        = string

  validation {
    condition     = can(regex("^(/|https?://)\\S+$", var.base_image))
    error_message = "base_image must be an absolute path or an http(s) URL of a Debian 12 cloud image."
  }
}

variable "network" {
  description = "The nodes' libvirt NAT network; the host side takes the network's first address."
  type = object({
    name = string
    cidr = string
  })
  default = {
    name = "boutique"
    cidr = "192.168.10.0/24"
  }

  validation {
    condition     = can(cidrnetmask(var.network.cidr))
    error_message = "network.cidr must be an IPv4 CIDR block such as 192.168.10.0/24."
  }
}

variable "nodes" {
  description = "The cluster's VMs: name -> static IPv4 address and size."
  type = map(object({
    address    = string
    vcpu       = optional(number, 2)
    memory_mib = optional(number, 4096)
    disk_gib   = optional(number, 20)
  }))
  default = {
    k8s-master  = { address = "192.168.10.11" }
    k8s-worker1 = { address = "192.168.10.12" }
    k8s-worker2 = { address = "192.168.10.13" }
  }

  validation {
    condition     = alltrue([for node in values(var.nodes) : can(cidrhost("${node.address}/32", 0))])
    error_message = "Every node address must be an IPv4 address."
  }

  validation {
    condition     = length(distinct([for node in values(var.nodes) : node.address])) == length(var.nodes)
    error_message = "Two nodes share an address."
  }

  validation {
    # kubeadm's minimum for a control plane: 2 vCPUs and 1700 MiB.
    condition     = alltrue([for node in values(var.nodes) : node.vcpu >= 2 && node.memory_mib >= 2048])
    error_message = "Every node needs at least 2 vCPUs and 2048 MiB (kubeadm's preflight)."
  }
}

variable "ssh_user" {
  description = "The user cloud-init creates on every node (passwordless sudo, key-only SSH); Ansible logs in as it."
  type        = string
  default     = "debian"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.ssh_user))
    error_message = "ssh_user must be a valid Linux user name."
  }
}

variable "ssh_public_key" {
  description = "OpenSSH public key authorised for ssh_user (the line of a .pub file)."
  type        = string

  validation {
    condition     = can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*( .*)?$", var.ssh_public_key))
    error_message = "ssh_public_key must be one OpenSSH public key line (ssh-ed25519, ssh-rsa or ecdsa-sha2-*)."
  }
}
