"""What serves the platform in the lab: the registry and its image mirror (the stand-in, upstream images,
CoreDNS), the git server and its repositories, the CI runner, the Slack receiver, and the platform's
components the lab still runs itself (Argo CD's install, MetalLB, monitoring, Sealed Secrets).

May import ``provisioning.lab.machines`` and the lab's shared modules (``processes``, ``pki``, ``kubectl``,
``layout``, ``build``)."""
