#!/usr/bin/env bash
# Refresh the Swagger UI that /docs serves from the package (no CDN: the docs page must work
# on a machine without internet). Usage: tools/vendor_swagger_ui.sh [version, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
target=src/filegate/web/static/swagger-ui
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "swagger-ui-dist@${1:-5}" --silent >/dev/null && tar xzf swagger-ui-dist-*.tgz)
for name in swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt; do
    cp "$work/package/$name" "$target/$name"
done
node -p "require('$work/package/package.json').version" > "$target/VERSION"
echo "Swagger UI $(cat "$target/VERSION") in $target"
