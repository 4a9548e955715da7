#!/bin/sh
# Entrypoint of the Haven image.
#
#   <image>                       haven serve --host 0.0.0.0 --port 8000 (the CMD)
#   <image> migrate               haven migrate
#   <image> create-user --email ...   any other haven command, by its name
#   <image> haven migrate         the same, spelled out
#   <image> bash                  any other program on the PATH runs as itself
#
# Haven itself checks its settings before it does anything (secret key, evidence
# folder, database) and, if one is wrong, prints one line starting "haven: "
# saying what to fix and exits with code 2, so a misconfigured container stops
# at once with that line in `docker compose logs`.
set -eu

if [ "$#" -eq 0 ]; then
    set -- serve --host 0.0.0.0 --port 8000
fi

case "$1" in
haven)
    shift
    ;;
-*)
    # options only, such as --help: they are haven's
    ;;
*)
    if command -v -- "$1" >/dev/null 2>&1; then
        exec "$@"
    fi
    ;;
esac

if ! command -v haven >/dev/null 2>&1; then
    echo "haven: the haven command is not on the PATH ($PATH); this image is broken, rebuild it" >&2
    exit 2
fi
exec haven "$@"
