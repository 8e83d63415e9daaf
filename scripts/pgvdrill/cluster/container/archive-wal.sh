#!/bin/sh
# pgvdrill archive-wal for servers in containers: archive-wal.sh PATH NAME DEST
set -u
path=$1 name=$2 dest=$3
names='[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history'
printf '%s\n' "$name" | grep -Eqx "$names" || {
    echo "archive-wal: refusing WAL file name '$name'" >&2; exit 2; }
final=$dest/$name
if [ -e "$final" ]; then
    cmp -s "$path" "$final" && exit 0
    echo "archive-wal: $final exists with other contents; it is never overwritten" >&2
    exit 1
fi
for stale in "$dest/.$name".*.tmp; do  # left by an attempt that was killed (its pid gone)
    pid=${stale#"$dest/.$name."}
    pid=${pid%.tmp}
    case $pid in ''|*[!0-9]*) continue ;; esac
    [ -f "$stale" ] && [ ! -L "$stale" ] && [ ! -d "/proc/$pid" ] && rm -f "$stale"
done
tmp=$dest/.$name.$$.tmp
if cp "$path" "$tmp" && sync "$tmp" && ln "$tmp" "$final"; then
    rm -f "$tmp"
    sync "$dest"
    exit 0
fi
rm -f "$tmp"
exit 1
