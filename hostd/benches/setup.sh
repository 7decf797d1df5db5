#!/usr/bin/env bash
# Installs what the hostd benchmarks compare against. Never run by the tests.
#
#   wrk          the load generator (Debian package)
#   wasmtime     wasmtime-cli 48.0.8 from crates.io, the same wasmtime version
#                hostd embeds, for `wasmtime serve -S cli -O pooling-allocator`
#
# Installs into hostd/benches/.tools (git-ignored); takes a while the first time
# (wasmtime-cli is a large build).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tools="$here/.tools"
mkdir -p "$tools"

if ! command -v wrk >/dev/null 2>&1; then
    echo "installing wrk (apt)" >&2
    if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
fi

if [ ! -x "$tools/bin/wasmtime" ]; then
    echo "installing wasmtime-cli 48.0.8 from crates.io into $tools" >&2
    cargo install wasmtime-cli --version 48.0.8 --locked --root "$tools" ${CARGO_INSTALL_JOBS:+-j "$CARGO_INSTALL_JOBS"}
fi
"$tools/bin/wasmtime" --version
wrk --version 2>&1 | head -1 || true
