#!/usr/bin/env bash
# Installs everything bench/run needs. Safe to run again: every step is skipped
# when its result is already there, so a warm run costs well under a second.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$BENCH/.venv"
PYTHON="${PYTHON:-python3}"
# mod_wsgi refuses to run the app as root, so its daemons run as this user.
WSGI_USER=wsgibench

log() { echo "setup: $*" >&2; }
# Keep output quiet, but show everything when a step fails.
quiet() {
    local out
    out="$(mktemp)"
    if ! "$@" >"$out" 2>&1; then
        cat "$out" >&2
        rm -f "$out"
        log "FAILED: $*"
        exit 1
    fi
    rm -f "$out"
}

# wrk is the client; h2load (nghttp2-client) is there for HTTP/2 runs;
# pip's mod_wsgi compiles against apache2-dev (apxs) and runs Debian's apache2;
# acl lets the mod_wsgi user reach a Python that lives under /root.
APT_PKGS=(wrk nghttp2-client apache2 apache2-dev acl)
missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    quiet apt-get update
    quiet apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    quiet "$PYTHON" -m venv "$VENV"
fi

# The stamp is a copy of the requirements the venv was built from: editing
# requirements.txt triggers a reinstall, an unchanged one costs nothing.
REQ="$BENCH/requirements.txt"
STAMP="$VENV/.bench-requirements"
if ! cmp -s "$REQ" "$STAMP"; then
    log "pip install -r requirements.txt (uwsgi and mod_wsgi compile: about a minute)"
    quiet "$VENV/bin/python" -m pip install --disable-pip-version-check -r "$REQ"
    cp "$REQ" "$STAMP"
fi

if ! id -u "$WSGI_USER" >/dev/null 2>&1; then
    log "creating user $WSGI_USER"
    quiet useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$WSGI_USER"
fi

# pyenv's Python lives under /root (mode 700), which the mod_wsgi daemons,
# running as $WSGI_USER, must traverse to load the standard library. Grant
# that user search permission (not listing) on just the directories that lack it.
as_wsgi_user() { runuser -u "$WSGI_USER" -- "$@"; }
check_py='import sys, encodings, json; sys.path.insert(0, sys.argv[1]); import hello'
if ! as_wsgi_user "$VENV/bin/python" -c "$check_py" "$BENCH/apps" >/dev/null 2>&1; then
    base="$("$VENV/bin/python" -c 'import os, sys; print(os.path.realpath(sys.base_prefix))')"
    for top in "$base" "$BENCH"; do
        d="$top"
        while [[ "$d" != / ]]; do
            if ! as_wsgi_user test -x "$d"; then
                log "granting $WSGI_USER search permission on $d"
                quiet setfacl -m "u:$WSGI_USER:x" "$d"
            fi
            d="$(dirname "$d")"
        done
    done
    as_wsgi_user "$VENV/bin/python" -c "$check_py" "$BENCH/apps" \
        || { log "$WSGI_USER still cannot run $VENV/bin/python with the app"; exit 1; }
fi

# vegeta, the open-loop client (a Go program: not in Debian), built from the
# Go module proxy into .build; the stamp holds the version it was built at.
VEGETA_VERSION=v12.12.0
BUILD="$BENCH/.build"
if [[ ! -x "$BUILD/vegeta" ]] || [[ "$(cat "$BUILD/vegeta.version" 2>/dev/null)" != "$VEGETA_VERSION" ]]; then
    log "go install github.com/tsenart/vegeta/v12@$VEGETA_VERSION"
    mkdir -p "$BUILD"
    GOBIN="$BUILD" quiet go install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION"
    echo "$VEGETA_VERSION" >"$BUILD/vegeta.version"
fi

# Fail here rather than in the middle of a benchmark.
"$VENV/bin/python" -c "import gunicorn, mod_wsgi, granian, flask, django" || { log "venv imports failed"; exit 1; }
quiet "$VENV/bin/uwsgi" --version
quiet "$VENV/bin/mod_wsgi-express" module-location
command -v wrk >/dev/null || { log "wrk missing"; exit 1; }
