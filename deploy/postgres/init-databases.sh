#!/bin/sh
# One database and one login role per service (docs/architecture.md §1: nobody reads another service's tables).
# Runs once, on the first start of an empty data volume (docker-entrypoint-initdb.d).
# Passwords come from the environment or from *_FILE (Docker secrets); none has a default.
set -eu

secret() {
    name="$1"
    file_var="${name}_FILE"
    eval "file=\${$file_var:-}"
    if [ -n "$file" ]; then
        cat "$file"
    else
        eval "printf '%s' \"\${$name:-}\""
    fi
}

for service in intake storage verification notification; do
    upper=$(printf '%s' "$service" | tr '[:lower:]' '[:upper:]')
    password=$(secret "WBS_${upper}_DB_PASSWORD")
    if [ -z "$password" ]; then
        echo "init-databases: WBS_${upper}_DB_PASSWORD is not set" >&2
        exit 1
    fi
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
         -v role="wbs_$service" -v db="wbs_$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
done
