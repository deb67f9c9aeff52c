#!/bin/sh
# Push images/<service>.tar to $IMAGE_PREFIX/<service>:$IMAGE_TAG with crane, trusting only the
# registry's own CA ($REGISTRY_CA_FILE, a "File" CI/CD variable), logged in with the deploy token.
set -eu
die() { echo "push-images: ERROR: $*" >&2; exit 1; }
echo "${IMAGE_TAG:-}" | grep -Eq '^[0-9a-f]{7,40}$' || die "IMAGE_TAG must be a commit SHA, got '${IMAGE_TAG:-}'"
if [ -z "${REGISTRY_USER:-}" ] || [ -z "${REGISTRY_PASSWORD:-}" ]; then
  die "REGISTRY_USER / REGISTRY_PASSWORD are not set"
fi
[ -r "${REGISTRY_CA_FILE:-}" ] || die "REGISTRY_CA_FILE (the registry CA certificate) is not readable"
export SSL_CERT_FILE="$REGISTRY_CA_FILE"
# REGISTRY_ADDRESS: host:port to reach the registry at when the runner cannot resolve its name (the lab's
# registry.local); its certificate names that address too. The image keeps its name: same repository, tag.
registry=${REGISTRY_ADDRESS:-${REGISTRY:-registry.local}}
repository=${IMAGE_PREFIX#*/}
DOCKER_CONFIG=$(mktemp -d) # the login is this job's only, never left in the runner's home
export DOCKER_CONFIG
trap 'rm -rf "$DOCKER_CONFIG"' EXIT
printf '%s' "$REGISTRY_PASSWORD" | crane auth login "$registry" -u "$REGISTRY_USER" --password-stdin
SERVICES=${SERVICES:-$(ci/changed-services.sh)}
for svc in $SERVICES; do
  [ -f "images/$svc.tar" ] || die "images/$svc.tar is missing: did the build job run?"
  crane push "images/$svc.tar" "$registry/$repository/$svc:$IMAGE_TAG"
  echo "push-images: $(crane digest "$registry/$repository/$svc:$IMAGE_TAG") $IMAGE_PREFIX/$svc:$IMAGE_TAG"
done
