#!/usr/bin/env bash
# The main job end to end on a fresh Debian machine (as root): set up, start a local registry,
# build a real image archive (busybox), push it, list it, pull it back, and run what came back.
# DEMO_SKIP_SETUP=1 skips the set-up (the tests run the demo so, after CI's own set-up);
# DEMO_REGISTRY, DEMO_DIR and DEMO_PYTHON choose the registry, the work directory and the
# Python with registryv2 installed. Where no registry answers, the demo starts one (on a free
# port when the default, 15000, is taken by something else).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${DEMO_SKIP_SETUP:-}" = 1 ] || bash .ci/setup
py=${DEMO_PYTHON:-.venv/bin/python}
rv2="$py -m registryv2"
registry=${DEMO_REGISTRY:-localhost:15000}
demo=${DEMO_DIR:-demo}

rm -rf "$demo" && mkdir -p "$demo/rootfs/bin"
cp "$(command -v busybox)" $demo/rootfs/bin/busybox
for applet in sh ls echo cat; do ln -s busybox "$demo/rootfs/bin/$applet"; done
$py examples/build_archive.py $demo/rootfs demo.local/tools/busybox:1.0 $demo/busybox.tar >/dev/null
echo "== built $demo/busybox.tar ($(du -h $demo/busybox.tar | cut -f1))"

answers() { $rv2 check --timeout 2 --retries 1 "$1" >/dev/null 2>&1; }
free_port() {  # prints port $1 of 127.0.0.1 if it is free (0: any free port)
    $py - "$1" 2>/dev/null <<'PY'
import socket, sys
with socket.socket() as s:
    s.bind(("127.0.0.1", int(sys.argv[1])))
    print(s.getsockname()[1])
PY
}
if ! answers "$registry"; then
    # None answers there: start one on its port, or on a free one when the default is taken.
    port=$(free_port "${registry##*:}") || true
    if [ -z "$port" ]; then
        if [ -n "${DEMO_REGISTRY:-}" ]; then
            echo "demo: no registry answers at $registry, and its port is not free for one" >&2
            exit 1
        fi
        port=$(free_port 0)
    fi
    registry=localhost:$port
    sed -e "s#@ROOT@#$(cd "$demo" && pwd)/registry-data#" -e "s#127.0.0.1:15000#127.0.0.1:$port#" \
        examples/registry.yml > $demo/registry.yml
    docker-registry serve $demo/registry.yml > $demo/registry.log 2>&1 &
    registry_pid=$!
    trap 'kill $registry_pid 2>/dev/null || true' EXIT
    tries=50
    until answers "$registry"; do
        tries=$((tries - 1))
        if [ $tries = 0 ]; then
            echo "demo: the registry did not start on $registry (log: $demo/registry.log)" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "== started a registry on $registry (log: $demo/registry.log)"
fi

echo "== push"
$rv2 push $demo/busybox.tar "$registry/tools/busybox:1.0"
digest=$($rv2 digest "$registry/tools/busybox:1.0")

echo "== list"
for repository in $($rv2 ls "$registry"); do
    echo "$repository: $($rv2 tags "$registry/$repository" | tr '\n' ' ')"
done
$rv2 inspect "$registry/tools/busybox:1.0"

echo "== pull back into an archive"
$rv2 pull "$registry/tools/busybox:1.0" -o $demo/pulled.tar
$py - $demo/pulled.tar "$digest" <<'PY'
import sys
from registryv2 import inspect_docker_tar
info = inspect_docker_tar(sys.argv[1])
assert info.manifest_digest == sys.argv[2], (info.manifest_digest, sys.argv[2])
print(f"{sys.argv[1]}: {info.repo_tags[0]}, {info.os}/{info.architecture}, "
      f"{len(info.layers)} layer(s), {info.size} bytes, manifest {info.manifest_digest[:19]}")
PY

echo "== skopeo, an independent client, reads the pulled archive"
rm -rf $demo/checked
skopeo --insecure-policy copy -q docker-archive:$demo/pulled.tar dir:$demo/checked
echo "ok: $(ls $demo/checked | wc -l) files, every blob checked"

echo "== run what came back"
mkdir -p $demo/pulled && tar -xf $demo/pulled.tar -C $demo/pulled
layer=$($py -c "import json; print(json.load(open('$demo/pulled/manifest.json'))[0]['Layers'][0])")
mkdir -p $demo/pulled/rootfs && tar -xf "$demo/pulled/$layer" -C $demo/pulled/rootfs
$demo/pulled/rootfs/bin/busybox echo "hello from the pulled image"
