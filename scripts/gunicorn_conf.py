"""Gunicorn settings for scripts/start.sh: uvicorn workers, JSON logs, metrics of dead workers forgotten."""

import os
from typing import Any

# scripts/start.sh passes --bind and --workers from HOST, PORT and WEB_CONCURRENCY.
# uvloop and httptools are picked up by the worker when installed (they are pinned in requirements.txt).
worker_class = "uvicorn_worker.UvicornWorker"
# The application imports in each worker, after PROMETHEUS_MULTIPROC_DIR is set, so its metrics go to files.
preload_app = False
graceful_timeout = 30
timeout = 60
keepalive = 5
# The runtime control socket lives in $HOME: instances on one host would share it, and nothing here uses it.
control_socket_disable = True
# X-Forwarded-For is the application's business (TRUSTED_PROXIES): the server itself believes no proxy.
forwarded_allow_ips = ""
# The application writes one JSON access line per request itself.
accesslog = None
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": ["console"], "propagate": False},
    },
}


def child_exit(_server: Any, worker: Any) -> None:
    """Forget a dead worker's live gauges (requests in flight), which would otherwise count forever."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
