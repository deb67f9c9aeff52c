#!/usr/bin/env bash
# update-gitops: write the new image tag of each changed service into gitops-repo with
# `kustomize edit set image`, commit with a message that names the app-repo commit, and push. A push that
# gitops-repo rejects because another pipeline pushed first is retried on the new head: fetch, reset,
# apply the same edit again, commit, push. Nothing is ever force-pushed, so no update is lost: either
# every bump lands or the job fails with a clear message. Tags already in place make no commit, and a
# pipeline that finishes late never takes a service back to an older app-repo commit than the one deployed.
#
# Variables (GitLab CI/CD variables; the lab passes the same through gitlab-ci-local):
#   SERVICES          services to bump, space-separated (default: ci/changed-services.sh)
#   IMAGE_TAG         the tag: $CI_COMMIT_SHORT_SHA, a hex commit SHA (never "latest")
#   APP_COMMIT        the app-repo commit the images were built from ($CI_COMMIT_SHA)
#   GITOPS_REPO_URL   HTTPS URL of gitops-repo
#   GITOPS_BRANCH     branch Argo CD syncs (default main)
#   GITOPS_OVERLAY    overlay whose images are set (default overlays/dev)
#   IMAGE_PREFIX      image name prefix (default registry.local/boutique)
#   GITOPS_USER       user for the token (default update-gitops)
#   GITOPS_TOKEN      project access token with write_repository (masked variable; never printed)
#   GITOPS_CA_FILE    CA certificate of the git server (optional; a "File" variable on GitLab)
#   PUSH_ATTEMPTS     pushes before giving up (default 5)
#   GIT_TIMEOUT       seconds for one git network command (default 60)
set -euo pipefail
start_dir=$PWD

die() {
  echo "update-gitops: ERROR: $*" >&2
  exit 1
}
say() { echo "update-gitops: $*"; }

SERVICES=${SERVICES:-}
IMAGE_TAG=${IMAGE_TAG:-${CI_COMMIT_SHORT_SHA:-}}
APP_COMMIT=${APP_COMMIT:-${CI_COMMIT_SHA:-}}
GITOPS_BRANCH=${GITOPS_BRANCH:-main}
GITOPS_OVERLAY=${GITOPS_OVERLAY:-overlays/dev}
IMAGE_PREFIX=${IMAGE_PREFIX:-registry.local/boutique}
GITOPS_USER=${GITOPS_USER:-update-gitops}
PUSH_ATTEMPTS=${PUSH_ATTEMPTS:-5}
GIT_TIMEOUT=${GIT_TIMEOUT:-60}

# --- inputs -------------------------------------------------------------------------------------------
[ -n "${GITOPS_REPO_URL:-}" ] || die "GITOPS_REPO_URL is not set (the HTTPS URL of gitops-repo)"
case "$GITOPS_REPO_URL" in # credentials first, so that a URL holding one is never echoed
  *@*) die "GITOPS_REPO_URL must not carry credentials; set GITOPS_TOKEN instead" ;;
esac
case "$GITOPS_REPO_URL" in
  https://*) ;;
  *) die "GITOPS_REPO_URL must be an https:// URL, got '$GITOPS_REPO_URL'" ;;
esac
[ -n "${GITOPS_TOKEN:-}" ] || die "GITOPS_TOKEN is not set (the project access token of the bump job)"
[[ "$IMAGE_TAG" =~ ^[0-9a-f]{7,40}$ ]] ||
  die "IMAGE_TAG must be a commit SHA (7-40 hex digits, \$CI_COMMIT_SHORT_SHA), got '${IMAGE_TAG}'"
[[ "$APP_COMMIT" =~ ^[0-9a-f]{7,40}$ ]] || die "APP_COMMIT must be the app-repo commit SHA, got '${APP_COMMIT}'"
[[ "$APP_COMMIT" == "$IMAGE_TAG"* ]] || die "IMAGE_TAG $IMAGE_TAG is not a prefix of APP_COMMIT $APP_COMMIT"
[[ "$GITOPS_OVERLAY" =~ ^[A-Za-z0-9._/-]+$ && "$GITOPS_OVERLAY" != *..* ]] ||
  die "GITOPS_OVERLAY must be a path inside gitops-repo, got '$GITOPS_OVERLAY'"
[[ "$PUSH_ATTEMPTS" =~ ^[1-9][0-9]*$ ]] || die "PUSH_ATTEMPTS must be a positive number, got '$PUSH_ATTEMPTS'"
command -v kustomize >/dev/null || die "kustomize is not on PATH"
if [ -z "$SERVICES" ]; then
  SERVICES=$("$(dirname "$0")/changed-services.sh")
fi
read -r -a services <<<"$SERVICES"
[ "${#services[@]}" -gt 0 ] || {
  say "no service changed: nothing to deploy"
  exit 0
}
for svc in "${services[@]}"; do
  [[ "$svc" =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "invalid service name '$svc' (lowercase letters, digits, '-')"
done

# --- git: credentials through the environment, never in a URL, an argument or a file -----------------
git_config() { # append one GIT_CONFIG_KEY_n/VALUE_n pair to what the environment already has
  local n=${GIT_CONFIG_COUNT:-0}
  export "GIT_CONFIG_KEY_${n}=$1" "GIT_CONFIG_VALUE_${n}=$2"
  export GIT_CONFIG_COUNT=$((n + 1))
}
auth=$(printf '%s:%s' "$GITOPS_USER" "$GITOPS_TOKEN" | base64 | tr -d '\n')
git_config http.extraHeader "Authorization: Basic ${auth}"
unset auth
git_config credential.helper ""
git_config commit.gpgsign false
if [ -n "${GITOPS_CA_FILE:-}" ]; then
  [ -r "$GITOPS_CA_FILE" ] || die "GITOPS_CA_FILE $GITOPS_CA_FILE cannot be read"
  git_config http.sslCAInfo "$GITOPS_CA_FILE"
  export GIT_SSL_CAINFO="$GITOPS_CA_FILE"
fi
export GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME=${GITOPS_COMMIT_NAME:-update-gitops}
export GIT_AUTHOR_EMAIL=${GITOPS_COMMIT_EMAIL:-update-gitops@boutique.local}
export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL

work=$(mktemp -d "${TMPDIR:-/tmp}/update-gitops.XXXXXX")
trap 'rm -rf "$work"' EXIT
errors=$work/git.err

net_git() { # a git command that talks to the server, bounded in time; stderr kept for the message
  local rc=0
  timeout "$GIT_TIMEOUT" git "$@" 2>"$errors" || rc=$?
  [ "$rc" -ne 124 ] || echo "git $1 timed out after ${GIT_TIMEOUT}s (GIT_TIMEOUT)" >>"$errors"
  return "$rc"
}
git_problem() { # the last meaningful line git printed
  grep -v '^\s*$' "$errors" | grep -v '^hint:' | tail -n 2 | tr '\n' ' ' | cut -c1-300 | sed 's/ *$//'
}

repo=$work/gitops-repo
net_git clone --quiet --single-branch --branch "$GITOPS_BRANCH" "$GITOPS_REPO_URL" "$repo" ||
  die "cannot clone branch $GITOPS_BRANCH of $GITOPS_REPO_URL: $(git_problem)"
kustomization=$repo/$GITOPS_OVERLAY/kustomization.yaml
[ -f "$kustomization" ] || die "gitops-repo has no $GITOPS_OVERLAY/kustomization.yaml"

for svc in "${services[@]}"; do # bump only images the overlay deploys: `edit set image` would add a stray entry
  grep -Eq "^[[:space:]]*-?[[:space:]]*name:[[:space:]]*${IMAGE_PREFIX//./\\.}/${svc}[[:space:]]*$" "$kustomization" ||
    die "unknown service '$svc': $GITOPS_OVERLAY/kustomization.yaml has no image ${IMAGE_PREFIX}/${svc}"
done

message=$work/message

write_message() { # the commit message for the images given
  local image names
  names=$(for image in "$@"; do image=${image%:*}; echo "${image##*/}"; done | paste -sd, -)
  {
    echo "Deploy ${names}:${IMAGE_TAG} to ${GITOPS_OVERLAY}"
    echo
    echo "app-repo commit: ${APP_COMMIT}"
    [ -z "${CI_PROJECT_URL:-}" ] || echo "app-repo: ${CI_PROJECT_URL}"
    [ -z "${CI_PIPELINE_URL:-}" ] || echo "pipeline: ${CI_PIPELINE_URL}"
    echo "images:"
    for image in "$@"; do echo "  $image"; done
    echo
    echo "[skip ci]"
  } >"$message"
}

deployed_tag() { # the newTag the overlay sets for image $1, unquoted (kustomize quotes an all-digit tag)
  awk -v name="$1" '
    $0 ~ "name: *" name " *$" { found = 1; next }
    found && /newTag:/ { tag = $2; gsub(/["\047]/, "", tag); print tag; exit }
    found && /^ *- / { exit }' "$kustomization"
}

newer_deployed() { # true when the overlay runs $1's image from an app-repo commit that descends from ours
  local current
  current=$(deployed_tag "${IMAGE_PREFIX}/$1")
  [ -n "$current" ] && [ "$current" != "$IMAGE_TAG" ] || return 1
  git -C "$start_dir" rev-parse --quiet --verify "${current}^{commit}" >/dev/null 2>&1 || return 1
  git -C "$start_dir" merge-base --is-ancestor "$APP_COMMIT" "$current" 2>/dev/null || return 1
  say "$1: $GITOPS_OVERLAY already deploys $current, a later app-repo commit than $IMAGE_TAG: not going back"
}

cd "$repo"
for attempt in $(seq 1 "$PUSH_ATTEMPTS"); do
  apply=()
  for svc in "${services[@]}"; do # decided again on every attempt: a newer bump may have landed meanwhile
    newer_deployed "$svc" || apply+=("${IMAGE_PREFIX}/${svc}:${IMAGE_TAG}")
  done
  if [ "${#apply[@]}" -eq 0 ]; then
    say "GITOPS_COMMIT=$(git rev-parse HEAD) (unchanged)"
    exit 0
  fi
  (cd "$GITOPS_OVERLAY" && kustomize edit set image "${apply[@]}") || die "kustomize edit set image failed"
  if git diff --quiet; then
    say "$GITOPS_OVERLAY already deploys ${apply[*]}: nothing to commit"
    say "GITOPS_COMMIT=$(git rev-parse HEAD) (unchanged)"
    exit 0
  fi
  write_message "${apply[@]}"
  changed=$(git diff --name-only)
  [ "$changed" = "$GITOPS_OVERLAY/kustomization.yaml" ] || die "the edit changed other files too: $changed"
  git commit --quiet --all --file "$message"
  if net_git push --quiet origin "HEAD:refs/heads/${GITOPS_BRANCH}"; then
    say "pushed ${apply[*]} to $GITOPS_OVERLAY on $GITOPS_BRANCH (attempt $attempt)"
    say "GITOPS_COMMIT=$(git rev-parse HEAD)"
    echo "GITOPS_COMMIT=$(git rev-parse HEAD)" >"$start_dir/update-gitops.env" # dotenv report
    exit 0
  fi
  # HTTP 403 as git words it: a bare 403 also matches the SHAs in "cannot lock ref ...: is at <sha> but
  # expected <sha>", which is a concurrent push to retry, not a refusal.
  if grep -Eq 'hook declined|protected branch|denied|returned error: 403' "$errors"; then
    die "gitops-repo refused the push (protected branch or token without write access): $(git_problem)"
  fi
  if ! grep -Eq 'non-fast-forward|fetch first|\[rejected\]|\[remote rejected\]|failed to update ref|cannot lock ref' "$errors"; then
    die "push to $GITOPS_REPO_URL failed: $(git_problem)"
  fi
  [ "$attempt" -lt "$PUSH_ATTEMPTS" ] || break
  say "push rejected: $GITOPS_BRANCH moved on (attempt $attempt of $PUSH_ATTEMPTS); re-applying on the new head"
  sleep "$((attempt + RANDOM % 3))"
  net_git fetch --quiet origin "$GITOPS_BRANCH" || die "cannot fetch $GITOPS_BRANCH: $(git_problem)"
  git reset --quiet --hard FETCH_HEAD
done
die "push still rejected after $PUSH_ATTEMPTS attempts: $GITOPS_BRANCH keeps moving; run the job again"
