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
printf '%s' "$REGISTRY_PASSWORD" | crane auth login "${REGISTRY:-registry.local}" -u "$REGISTRY_USER" --password-stdin
SERVICES=${SERVICES:-$(ci/changed-services.sh)}
for svc in $SERVICES; do
  [ -f "images/$svc.tar" ] || die "images/$svc.tar is missing: did the build job run?"
  crane push "images/$svc.tar" "$IMAGE_PREFIX/$svc:$IMAGE_TAG"
  echo "push-images: $(crane digest "$IMAGE_PREFIX/$svc:$IMAGE_TAG") $IMAGE_PREFIX/$svc:$IMAGE_TAG"
done
