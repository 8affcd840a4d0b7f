#!/usr/bin/env bash
# What `node native-bench/run.mjs` needs on a host that has neither network nor the
# peers installed (such as a 16-core machine lent for a session): Node, HAProxy, nginx
# and its stream module, wrk, iperf3, taskset, the shared libraries they load beyond
# glibc, tether's build (dist/) and its production node_modules, in one archive.
#
#   native-bench/device-kit.sh pack [NODE]   # here, after npm ci and a build: writes
#                                            #   .bench-kit/kit.tar.xz (about 35 MB)
#                                            #   with NODE (default: the node on PATH)
#   native-bench/device-kit.sh run ARGS...   # there, from the repository root, with
#                                            #   .bench-kit carried: unpacks it into
#                                            #   /tmp/bench-kit and runs
#                                            #   node native-bench/run.mjs ARGS with
#                                            #   the kit's programs first on PATH
#
# Pack a Node 22.12 or later (the tests install one: node_modules/.cache/tether-node-*)
# for the every-core rows: there each of tether's workers listens on a socket of its
# own and the kernel spreads connections evenly; on Node 20 they share one, and wrk's
# 50 connections, opened at once, can land mostly on one worker.
#
# The programs keep the host's glibc (its loader and libc, which must be as new as
# this machine's) and find every other library in the kit (LD_LIBRARY_PATH).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
kit_dir="$root/.bench-kit"
unpacked=/tmp/bench-kit
# glibc's own libraries stay the host's: a second libc beside the host's loader breaks.
glibc='^(libc|libm|libdl|libpthread|librt|ld-linux-x86-64)\.so'

stage=''
pack() {
  stage="$(mktemp -d)"
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/bin" "$stage/lib" "$stage/repo" "$kit_dir"
  local node="${1:-$(command -v node)}"
  "$node" --version >/dev/null 2>&1 || { echo "device-kit: $node does not run as Node" >&2; exit 2; }
  cp -L "$node" "$stage/bin/node"
  local programs=(haproxy nginx wrk iperf3 taskset)
  for p in "${programs[@]}"; do
    local path
    path="$(command -v "$p")" || { echo "device-kit: $p is not installed here" >&2; exit 2; }
    cp -L "$path" "$stage/bin/$p"
  done
  local stream=/usr/lib/nginx/modules/ngx_stream_module.so
  [ -f "$stream" ] || { echo "device-kit: $stream is missing (apt-get install libnginx-mod-stream)" >&2; exit 2; }
  cp -L "$stream" "$stage/lib/ngx_stream_module.so"
  # Every library the programs and the module load, less glibc's own.
  for f in "$stage"/bin/* "$stream"; do
    ldd "$f" | awk '/=> \//{ print $3 }'
  done | sort -u | while read -r lib; do
    if ! basename "$lib" | grep -Eq "$glibc"; then cp -L "$lib" "$stage/lib/"; fi
  done
  [ -f "$root/dist/cli.js" ] || { echo "device-kit: build first (npx tsc -p tsconfig.json)" >&2; exit 2; }
  cp -r "$root/dist" "$stage/repo/dist"
  cp "$root/package.json" "$root/package-lock.json" "$stage/repo/"
  # Production dependencies only; xxhash-addon ships prebuilt binaries.
  (cd "$stage/repo" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
  rm "$stage/repo/package.json" "$stage/repo/package-lock.json"
  tar -C "$stage" -cf - bin lib repo | xz -T0 -6 >"$kit_dir/kit.tar.xz"
  echo "device-kit: wrote $kit_dir/kit.tar.xz ($(du -h "$kit_dir/kit.tar.xz" | cut -f1)) with Node $("$node" --version); carry .bench-kit"
}

run() {
  [ -f "$kit_dir/kit.tar.xz" ] || { echo "device-kit: $kit_dir/kit.tar.xz is missing (pack it, and carry .bench-kit)" >&2; exit 2; }
  if [ ! -x "$unpacked/bin/node" ]; then
    mkdir -p "$unpacked"
    if command -v xz >/dev/null; then
      xz -dc "$kit_dir/kit.tar.xz" | tar -C "$unpacked" -xf -
    else
      # A host without xz: Python's lzma reads it too.
      python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$kit_dir/kit.tar.xz" | tar -C "$unpacked" -xf -
    fi
  fi
  # The repository travels without its ignored build and modules: the kit's stand in
  # (the build copied, since tether finds config/ beside its own files).
  if [ ! -e "$root/dist" ]; then cp -r "$unpacked/repo/dist" "$root/dist"; fi
  if [ ! -e "$root/node_modules" ]; then ln -s "$unpacked/repo/node_modules" "$root/node_modules"; fi
  export PATH="$unpacked/bin:$PATH"
  export LD_LIBRARY_PATH="$unpacked/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export NGINX_STREAM_MODULE="$unpacked/lib/ngx_stream_module.so"
  cd "$root"
  node native-bench/run.mjs "$@"
}

case "${1:-}" in
  pack) shift; pack "$@" ;;
  run) shift; run "$@" ;;
  *) echo "usage: native-bench/device-kit.sh pack [NODE] | run [run.mjs options]" >&2; exit 2 ;;
esac
