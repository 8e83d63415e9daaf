#!/bin/sh
# pgvdrill restore-wal for servers in containers: restore-wal.sh NAME PATH SOURCE [--partial]
# Exit 1 only when the archive has no such file (PostgreSQL: the end of the archived WAL);
# every other failure exits 126, which makes PostgreSQL stop recovery instead of promoting.
set -u
[ $# -ge 3 ] || { echo "restore-wal: usage: restore-wal.sh NAME PATH SOURCE [--partial]" >&2; exit 126; }
name=$1 path=$2 source=$3 partial=${4:-}
names='[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history'
printf '%s\n' "$name" | grep -Eqx "$names" || {
    echo "restore-wal: refusing WAL file name '$name'" >&2; exit 126; }
[ -d "$source" ] && [ -r "$source" ] && [ -x "$source" ] || {
    echo "restore-wal: cannot read the archive directory $source" >&2; exit 126; }
found=$source/$name
if [ ! -f "$found" ] && [ "$partial" = --partial ] && [ "${#name}" = 24 ]; then
    found=$found.partial
fi
[ -e "$found" ] || exit 1
cp "$found" "$path" || { echo "restore-wal: cannot restore $found" >&2; exit 126; }
