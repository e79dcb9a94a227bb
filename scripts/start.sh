#!/bin/sh
# Production entry point (the Docker image's CMD, and what the multi-process tests run): migrate, then serve.
#
# Environment, besides everything config.py reads:
#   HOST (127.0.0.1; the Docker image sets 0.0.0.0), PORT (8000), WEB_CONCURRENCY (worker processes, 2),
#   LOG_LEVEL (INFO), PYTHON (the interpreter that has the requirements, python3),
#   PROMETHEUS_MULTIPROC_DIR (where workers keep their metrics so /metrics adds them all up; when unset and
#   WEB_CONCURRENCY > 1, a fresh temporary directory).
set -eu

cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
WEB_CONCURRENCY="${WEB_CONCURRENCY:-2}"

# Every instance of a deploy may run this at once: env.py holds a PostgreSQL advisory lock (BEGIN IMMEDIATE on
# SQLite) for the whole upgrade, so one migrates while the others wait and then find nothing left to do.
"$PYTHON" -m alembic upgrade head

if [ -z "${PROMETHEUS_MULTIPROC_DIR:-}" ] && [ "$WEB_CONCURRENCY" -gt 1 ]; then
    PROMETHEUS_MULTIPROC_DIR="$(mktemp -d "${TMPDIR:-/tmp}/shop-metrics.XXXXXX")"
fi
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    export PROMETHEUS_MULTIPROC_DIR
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    # Files left by an earlier run would add dead processes' counts to this one's; only ours (*.db) are removed.
    find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -type f -name '*.db' -exec rm -f {} +
fi

exec "$PYTHON" -m gunicorn main:app --config scripts/gunicorn_conf.py --bind "$HOST:$PORT" --workers "$WEB_CONCURRENCY"
