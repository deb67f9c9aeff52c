#!/bin/sh
# Print the services (directories src/<name>/ with a Dockerfile) that the pushed commits changed, one line,
# space-separated. $SERVICES, when set, wins (a manual pipeline). A new branch or a base the shallow clone
# lacks falls back to the last commit; a first commit means every service.
set -eu
if [ -n "${SERVICES:-}" ]; then
  echo "$SERVICES"
  exit 0
fi
head=${CI_COMMIT_SHA:-HEAD}
base=${CI_COMMIT_BEFORE_SHA:-}
case "$base" in
  "" | 0000000000000000000000000000000000000000) base="" ;;
esac
if [ -n "$base" ] && ! git cat-file -e "${base}^{commit}" 2>/dev/null; then base=""; fi
if [ -z "$base" ] && git cat-file -e "${head}~1^{commit}" 2>/dev/null; then base="${head}~1"; fi
if [ -n "$base" ]; then
  paths=$(git diff --name-only "$base" "$head" -- src/)
else
  paths=$(git ls-tree -r --name-only "$head" -- src/)
fi
echo "$paths" | awk -F/ 'NF > 2 { print $2 }' | sort -u | while read -r svc; do
  [ -f "src/$svc/Dockerfile" ] && printf '%s ' "$svc"
done | sed 's/ $//'
echo
