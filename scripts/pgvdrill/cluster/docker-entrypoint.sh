#!/bin/sh
# pgvdrill's local pgvector image: the official postgres image's entrypoint contract in
# busybox sh. POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
# POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default: the user), PGDATA,
# POSTGRES_INITDB_ARGS, extra `-c name=value` arguments passed on to postgres.
# POSTGRES_*_FILE read the value from a file; `docker run --user UID:GID` runs as that
# user (its /etc/passwd line is added). First start: initdb as the unprivileged user,
# socket and loopback connections trusted, every other host with scram (host all all
# all scram-sha-256), listening on all addresses (listen_addresses = '*' comes from the
# image's postgresql.conf.sample).
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi

# POSTGRES_PASSWORD_FILE, POSTGRES_USER_FILE, POSTGRES_DB_FILE: the value from a file
for name in POSTGRES_PASSWORD POSTGRES_USER POSTGRES_DB; do
    eval "file=\${${name}_FILE:-}"
    if [ -n "$file" ]; then
        eval "$name=\$(cat \"\$file\")"
        export "${name?}"
        unset "${name}_FILE"  # read as root, before dropping to postgres (as upstream)
    fi
done

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    # options before `--`: busybox su would otherwise take a `-c` meant for postgres
    exec su -p -s /bin/sh -c 'exec "$0" "$@"' -- postgres "$0" "$@"
fi

if [ "$1" = postgres ] && ! grep -q "^[^:]*:[^:]*:$(id -u):" /etc/passwd; then
    # run with --user UID:GID (e.g. to own a bind-mounted PGDATA): initdb needs a name
    # for the user, and /etc/passwd is writable for this (the official image uses
    # nss_wrapper instead)
    printf 'postgres%s:x:%s:%s:PostgreSQL:/var/lib/postgresql:/bin/sh\n' \
        "$(id -u)" "$(id -u)" "$(id -g)" >> /etc/passwd
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
        echo "error: database is uninitialized and POSTGRES_PASSWORD is not set;" \
             "pass -e POSTGRES_PASSWORD=... (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
        exit 1
    fi
    user=${POSTGRES_USER:-postgres}
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
    # the image has no OS locales: UTF8 with the C locale unless POSTGRES_INITDB_ARGS say
    # otherwise (a list of words, as upstream)
    # shellcheck disable=SC2086
    # initdb's default authentication as upstream: trust over the socket and loopback
    # inside the container, the appended line below for every other host
    initdb --username="$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C \
        ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA"
    rm -f "$pwfile"
    printf '\nhost all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"
    db=${POSTGRES_DB:-$user}
    if [ "$db" != postgres ]; then
        postgres --single -D "$PGDATA" postgres <<SQL
CREATE DATABASE "$db";
SQL
    fi
    echo "pgvdrill entrypoint: initialised $PGDATA for user $user, database $db"
fi

exec "$@"
