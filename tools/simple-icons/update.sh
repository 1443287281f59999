#!/bin/sh
# Rebuilds templates/logos/simple-icons.tsv.gz from the npm package
# `simple-icons` (CC0): one line per icon, "slug<TAB>hex<TAB>path", gzip.
# Every Simple Icons SVG is one path on a 24x24 view box, so the path is
# all framecast keeps. Usage: tools/simple-icons/update.sh [VERSION]
set -eu
version=${1:-latest}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "simple-icons@$version" >/dev/null
tar xzf simple-icons-*.tgz
python3 - "$root/templates/logos" <<'PY'
import gzip, json, re, sys
out = sys.argv[1]
pkg = json.load(open("package/package.json"))
icons = json.load(open("package/data/simple-icons.json"))
shape = re.compile(r'<svg role="img" viewBox="0 0 24 24" xmlns="http://www.w3.org/2000/svg"><title>.*?</title><path d="([^"]*)"/></svg>\s*', re.S)
lines = []
for icon in icons:
    svg = open(f"package/icons/{icon['slug']}.svg").read()
    m = shape.fullmatch(svg)
    if not m:
        sys.exit(f"{icon['slug']}: not one path on a 24x24 view box")
    lines.append(f"{icon['slug']}\t{icon['hex']}\t{m.group(1)}")
lines.sort()
with gzip.GzipFile(f"{out}/simple-icons.tsv.gz", "wb", 9, mtime=0) as f:
    f.write("\n".join(lines).encode())
open(f"{out}/VERSION", "w").write(f"simple-icons {pkg['version']}, {len(lines)} icons\n")
PY
cp package/LICENSE.md "$root/templates/logos/LICENSE.md"
cp package/DISCLAIMER.md "$root/templates/logos/DISCLAIMER.md"
cat "$root/templates/logos/VERSION"
