terraform {
  # OpenTofu (./run setup builds 1.12) or Terraform.
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    libvirt = {
      source = "dmacvicar/libvirt"
      # The version ./run setup builds into the local provider mirror (provisioning/lab/versions.toml).
      version = "0.8.3"
    }
  }
}
