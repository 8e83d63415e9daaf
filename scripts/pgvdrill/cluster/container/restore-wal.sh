#!/bin/sh
# pgvdrill restore-wal for servers in containers: restore-wal.sh NAME PATH SOURCE [--partial]
set -u
name=$1 path=$2 source=$3 partial=${4:-}
names='[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history'
printf '%s\n' "$name" | grep -Eqx "$names" || {
    echo "restore-wal: refusing WAL file name '$name'" >&2; exit 2; }
found=$source/$name
if [ ! -f "$found" ] && [ "$partial" = --partial ] && [ "${#name}" = 24 ]; then
    found=$found.partial
fi
[ -f "$found" ] || exit 1
exec cp "$found" "$path"
