"""Clients of the platform's own APIs, spoken as their real clients speak them: Kubernetes (``kube``,
``kubectl``), Argo CD, GitLab's pipelines, Prometheus and Alertmanager, Slack, Grafana, Loki, the registry,
git (``gitops_repo``), ssh (``hosts``) and TLS. A client reads its address and credentials from the target
and raises one clear error when its service does not answer.

May import: ``run``."""
