#!/bin/sh
# Make a Docker engine answer on this machine (Debian 12, root): install docker.io when
# dockerd is missing, then start dockerd with the vfs storage driver and no iptables
# (what works in these sandboxes, see ../shared/DESIGN.md) unless an engine already
# answers; installs busybox-static for `pgvdrill image build`. Idempotent; prints what
# it did. Log: /var/log/pgvdrill-dockerd.log
set -eu

LOG=${PGVDRILL_DOCKERD_LOG:-/var/log/pgvdrill-dockerd.log}
WAIT=${PGVDRILL_DOCKERD_WAIT:-60}

# pgvdrill image build needs a static busybox (the image's shell and tools)
if [ ! -x /bin/busybox ]; then
    echo "setup-engine: installing busybox-static"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static || {
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static; }
fi

if docker info >/dev/null 2>&1; then
    echo "setup-engine: a Docker engine already answers; nothing to do"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "setup-engine: installing docker.io"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io || {
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io; }
fi

echo "setup-engine: starting dockerd (vfs, no iptables), log $LOG"
nohup dockerd --storage-driver vfs --iptables=false >>"$LOG" 2>&1 &
echo "setup-engine: dockerd pid $!"

waited=0
until docker info >/dev/null 2>&1; do
    if [ "$waited" -ge "$WAIT" ]; then
        echo "setup-engine: no engine answered after ${WAIT}s; last log lines:" >&2
        tail -n 20 "$LOG" >&2
        exit 1
    fi
    sleep 1
    waited=$((waited + 1))
done
echo "setup-engine: engine ready after ${waited}s: $(docker info --format '{{.ServerVersion}} {{.Driver}}')"
