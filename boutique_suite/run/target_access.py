"""How the suite reaches a target's services (GitLab, its registry, Slack, monitoring, Argo CD) and their
secrets: sections of a target file (boutique_suite/run/targets.py), each naming the environment variable or
file a secret is in, never the secret itself."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


class TargetError(Exception):
    """A target file cannot be used. ``str()`` is the message for the user, one line per problem."""


def _env_name(value: str) -> str:
    if not value.replace("_", "A").isalnum() or not value[:1].isalpha() or value.upper() != value:
        raise ValueError("expected the NAME of an environment variable (like SLACK_BOT_TOKEN), not a value")
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
Hostname = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GitLab(Strict):
    url: Annotated[str, Field(pattern=r"^https?://")]
    registry: Hostname
    token_env: EnvName
    ca_file: str | None = None
    version: str | None = None  # the GitLab version the platform pins (what /api/v4/version must answer)
    registry_user: str | None = None  # the user of token_env's token, for the registry's login


class RegistryAccess(Strict):
    """How the suite reaches the platform's private registry (GitLab's on-prem) to push, list and check its
    certificate. Without this section an onprem target's gitlab section gives it (registry, registry_user,
    token_env, ca_file)."""

    host: Hostname  # the name images carry: registry.local
    # Where to dial when ``host`` does not resolve from here (the lab's registry on its bridge); TLS still
    # verifies the certificate for ``host``.
    address: Annotated[str, Field(pattern=r"^[0-9.]+:[0-9]+$")] | None = None
    ca_file: str | None = None
    username: str
    password_env: EnvName | None = None
    password_file: str | None = None

    def password(self) -> str:
        return _secret("registry", self.password_env, self.password_file, "password")

    @property
    def dial(self) -> tuple[str, int]:
        """(host or address, port) a client connects to."""
        if self.address:
            ip, port = self.address.rsplit(":", 1)
            return ip, int(port)
        return self.host, 443


class Cluster(Strict):
    kubeconfig: str
    context: str

    @property
    def kubeconfig_path(self) -> Path:
        return Path(os.path.expanduser(self.kubeconfig))


def _secret(section: str, env: str | None, file: str | None, what: str) -> str:
    """The value of a secret named by ``*_env`` or ``*_file``; a clear TargetError when it is absent."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise TargetError(f"{section}: environment variable {env} ({what}) is not set")
        return value.strip()
    if file:
        path = Path(os.path.expanduser(file))
        if not path.is_file():
            raise TargetError(f"{section}: {path} ({what}) does not exist (for the lab: ./run lab up)")
        return path.read_text().strip()
    raise TargetError(f"{section}: name the {what} by an environment variable or a file")


class Slack(Strict):
    """The channel alerts go to and how the suite reads it: a bot token (scopes channels:read and
    channels:history) for Slack's Web API at api_url; the lab's Slack-compatible receiver has its own."""

    channel: Annotated[str, Field(pattern=r"^#?[a-z0-9][a-z0-9._-]*$")]
    token_env: EnvName | None = None
    token_file: str | None = None
    webhook_url_env: EnvName | None = None
    api_url: Annotated[str, Field(pattern=r"^https?://.*/$")] = "https://slack.com/api/"

    @model_validator(mode="after")
    def _one_token(self) -> Slack:
        if bool(self.token_env) == bool(self.token_file):
            raise ValueError("set exactly one of token_env (a variable holding the bot token) or token_file")
        return self

    def token(self) -> str:
        return _secret("slack", self.token_env, self.token_file, "Slack bot token")


class Monitoring(Strict):
    """Where the suite reaches Prometheus and Alertmanager (their HTTP APIs)."""

    prometheus_url: Annotated[str, Field(pattern=r"^https?://")]
    alertmanager_url: Annotated[str, Field(pattern=r"^https?://")]
    grafana_url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    grafana_token_env: EnvName | None = None  # a Grafana service account token (Viewer)
    loki_url: Annotated[str, Field(pattern=r"^https?://")] | None = None

    def grafana_token(self) -> str:
        return _secret("monitoring", self.grafana_token_env, None, "Grafana service account token")


class ArgoCDRepository(Strict):
    """gitops-repo as Argo CD reads it (on-prem bootstrap): HTTPS URL, a read-only deploy token's user name,
    and the environment variable that holds the token. The CA is gitlab.ca_file."""

    url: Annotated[str, Field(pattern=r"^https://")]
    username: str
    password_env: EnvName

    def password(self) -> str:
        return _secret("argocd.repository", self.password_env, None, "gitops-repo token")


class ArgoCDAccess(Strict):
    """How the suite reaches Argo CD's API; the admin password comes from an env var or a 0600 file."""

    url: Annotated[str, Field(pattern=r"^https?://")]
    username: str = "admin"
    password_env: EnvName | None = None
    password_file: str | None = None
    namespace: Hostname = "argocd"
    repository: ArgoCDRepository | None = None  # on-prem: what phase 3 gives Argo CD to read gitops-repo
    # Applications of the app-of-apps this site cannot run, each with the reason the report gives (layer 4
    # is ready without them; every other one must be Synced and Healthy).
    not_expected: dict[Hostname, str] = {}
    ca_file: str | None = None  # the CA that signed argocd-server's certificate (default: the system's)
    # Argo CD's dex (SSO): false for a site without SSO, whose install leaves argocd-dex-server out.
    dex: bool = True
    dex_absent_why: str = ""  # said in the report when dex is false

    @property
    def ca_path(self) -> Path | None:
        return Path(self.ca_file).expanduser() if self.ca_file else None

    def password(self) -> str:
        return _secret("argocd", self.password_env, self.password_file, "admin password")
