#!/usr/bin/env bash
# Installs the backup tools the provider drills run, as an operator would, and prints
# where each is:
#   Barman 3.19.1 with barman-cloud (PyPI barman[cloud]), in a venv of Debian's own
#     /usr/bin/python3.11: the servers' OS users run barman-cloud-wal-archive and
#     barman-wal-restore from it, and cannot enter root's Python
#   pgBackRest 2.45 (Debian), with Debian's PostgreSQL 15, the newest it accepts
# Usage: scripts/install-backup-tools.sh [ROOT]   (default /opt/pgvdrill-tools)
set -euo pipefail
root=${1:-/opt/pgvdrill-tools}
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x "$root/barman/bin/barman" ]; then
    # a venv records its own path, so it is built where it stays; a failed one is removed
    rm -rf "$root/barman"
    /usr/bin/python3.11 -m venv "$root/barman"
    "$root/barman/bin/pip" install --quiet 'barman[cloud]==3.19.1' || { rm -rf "$root/barman"; exit 1; }
fi
chmod -R a+rX "$root"
missing=()
command -v pgbackrest >/dev/null || missing+=(pgbackrest)
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian's packages start a cluster of their own: the drills never use it
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h | grep -q '^15 main .* online'; then
    pg_ctlcluster 15 main stop || true
fi
echo "barman: $root/barman/bin ($("$root/barman/bin/barman" --version | head -1))"
echo "pgbackrest: $(command -v pgbackrest) ($(pgbackrest version))"
echo "postgresql 15: /usr/lib/postgresql/15/bin"
