#!/usr/bin/env bash
# Netlify build (netlify.toml): ingest, build, publish the feed files and the docs site into
# public/, and proxy /api/* to the worker. Also runs on any machine with Python 3.11:
#   SOCDEF_API_ORIGIN=https://api.example.org bash deploy/netlify-build.sh
# SOCDEF_SKIP_INSTALL=1   use the Python environment as it is (socdef already installed)
# SOCDEF_SKIP_INGEST=1    build from the store as it is (a CI job that has just ingested)
# SOCDEF_SITE_ONLY=1      leave the feed files out (keep the bucket private; docs/deploy.md)
# SOCDEF_PUBLISH_DIR      where to write [default: public, as netlify.toml publishes]
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SOCDEF_API_ORIGIN:?set SOCDEF_API_ORIGIN to the worker origin, e.g. https://api.example.org}"
case "$SOCDEF_API_ORIGIN" in
  https://*|http://*) ;;
  *) echo "SOCDEF_API_ORIGIN must start with https:// or http://" >&2; exit 2 ;;
esac
origin="${SOCDEF_API_ORIGIN%/}"
py="${PYTHON:-python3}"
out="${SOCDEF_PUBLISH_DIR:-public}"
socdef() { "$py" -m generator "$@"; }

if [ "${SOCDEF_SKIP_INSTALL:-0}" != 1 ]; then
  "$py" -m pip install --quiet -e .
fi
if [ "${SOCDEF_SKIP_INGEST:-0}" != 1 ]; then
  socdef ingest
fi
socdef build
rm -rf "$out"
mkdir -p "$out"
if [ "${SOCDEF_SITE_ONLY:-0}" != 1 ]; then
  socdef publish --to "$out" --no-store  # the store's history stays out of public/
fi
socdef site --out "$out"
cat > "$out/_redirects" <<REDIRECTS
/api/*    ${origin}/api/:splat    200
/feeds/*  ${origin}/feeds/:splat  200
/healthz  ${origin}/healthz       200
REDIRECTS
echo "$out: $(find "$out" -type f | wc -l) files; /api/* -> ${origin}"
