provider "libvirt" {
  uri = var.libvirt_uri
}

locals {
  prefix  = split("/", var.network.cidr)[1]
  gateway = cidrhost(var.network.cidr, 1)
  # A MAC address derived from each node's IP, so cloud-init's network config can match the NIC by it.
  macs = {
    for name, node in var.nodes :
    name => format("52:54:00:%02x:%02x:%02x", [for octet in slice(split(".", node.address), 1, 4) : tonumber(octet)]...)
  }
}

resource "libvirt_network" "platform" {
  name      = var.network.name
  mode      = "nat"
  addresses = [var.network.cidr]
  autostart = true

  dhcp {
    enabled = false
  }
}

# One copy of the cloud image; every node disk is a copy-on-write layer over it.
resource "libvirt_volume" "base" {
  name   = "debian-12-base.qcow2"
  pool   = var.pool
  source = var.base_image
  format = "qcow2"
}

resource "libvirt_volume" "root" {
  for_each = var.nodes

  name           = "${each.key}.qcow2"
  pool           = var.pool
  base_volume_id = libvirt_volume.base.id
  format         = "qcow2"
  size           = each.value.disk_gib * 1024 * 1024 * 1024
}

resource "libvirt_cloudinit_disk" "init" {
  for_each = var.nodes

  name = "${each.key}-cloudinit.iso"
  pool = var.pool
  user_data = templatefile("${path.module}/templates/user-data.yaml.tftpl", {
    hostname       = each.key
    user           = var.ssh_user
    ssh_public_key = var.ssh_public_key
  })
  network_config = templatefile("${path.module}/templates/network-config.yaml.tftpl", {
    mac     = local.macs[each.key]
    address = "${each.value.address}/${local.prefix}"
    gateway = local.gateway
  })

  lifecycle {
    precondition {
      condition     = cidrhost("${each.value.address}/${local.prefix}", 0) == cidrhost(var.network.cidr, 0)
      error_message = "${each.key}'s address ${each.value.address} is outside network ${var.network.cidr}."
    }
  }
}

resource "libvirt_domain" "node" {
  for_each = var.nodes

  name      = each.key
  vcpu      = each.value.vcpu
  memory    = each.value.memory_mib
  autostart = true
  cloudinit = libvirt_cloudinit_disk.init[each.key].id

  network_interface {
    network_id = libvirt_network.platform.id
    mac        = local.macs[each.key]
    addresses  = [each.value.address]
    hostname   = each.key
  }

  disk {
    volume_id = libvirt_volume.root[each.key].id
  }

  # Debian's cloud images log to the serial console and wait for it at boot.
  console {
    type        = "pty"
    target_type = "serial"
    target_port = "0"
  }
}
