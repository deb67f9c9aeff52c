#!/bin/sh
# Build each changed service from its multi-stage Dockerfile with BuildKit: the buildkitd at $BUILDKIT_HOST
# when the runner provides one, else rootless (no daemon, no privileges: buildctl-daemonless.sh in
# moby/buildkit:*-rootless), into images/<service>.tar tagged
# $IMAGE_PREFIX/<service>:$IMAGE_TAG, every layer gzip (crane reads a tarball's layers as all compressed
# or none, by its first: a base image served uncompressed would otherwise be pushed mixed). The push job
# pushes those tarballs.
set -eu
die() { echo "build-images: ERROR: $*" >&2; exit 1; }
echo "${IMAGE_TAG:-}" | grep -Eq '^[0-9a-f]{7,40}$' || die "IMAGE_TAG must be a commit SHA, got '${IMAGE_TAG:-}'"
SERVICES=${SERVICES:-$(ci/changed-services.sh)}
[ -n "$SERVICES" ] || { echo "build-images: no service changed"; exit 0; }
if [ -n "${BUILDKIT_HOST:-}" ]; then # a buildkitd the runner provides (a GitLab service; the lab's own)
  buildctl=buildctl                  # it pulls the base images through its own registry configuration
else                                 # rootless, started for this job only
  buildctl=buildctl-daemonless.sh
  if [ -n "${REGISTRY_CA_FILE:-}" ]; then # base images mirrored on registry.local are pulled through its CA
    mkdir -p "$HOME/.config/buildkit"
    printf '[registry."%s"]\n  ca = ["%s"]\n' "${REGISTRY:-registry.local}" "$REGISTRY_CA_FILE" \
      >"$HOME/.config/buildkit/buildkitd.toml"
    BUILDKITD_FLAGS="${BUILDKITD_FLAGS:-} --config $HOME/.config/buildkit/buildkitd.toml"
    export BUILDKITD_FLAGS
  fi
fi
mkdir -p images
for svc in $SERVICES; do
  [ -f "src/$svc/Dockerfile" ] || die "unknown service '$svc': no src/$svc/Dockerfile"
  image="$IMAGE_PREFIX/$svc:$IMAGE_TAG"
  echo "build-images: $image"
  "$buildctl" build \
    --frontend dockerfile.v0 \
    --local context="src/$svc" \
    --local dockerfile="src/$svc" \
    --opt label:org.opencontainers.image.revision="${CI_COMMIT_SHA:-unknown}" \
    --output "type=docker,name=$image,dest=images/$svc.tar,compression=gzip,force-compression=true"
done
