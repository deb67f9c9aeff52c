"""Reading the platform's state and waiting on it, with three outcomes (succeeded, pending, failed): probes,
the steady state, rollouts, the storefront and its gateway, autoscaling, gitops-repo and GitLab checks,
CI/CD, pull secrets, the alerting config and its messages, the monitoring stack, Terraform.

May import: ``run``, ``clients``, ``context``, ``reporting``."""
