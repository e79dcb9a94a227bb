# The shop API: `docker compose up` (see docker-compose.yml) or run this image beside PostgreSQL and Redis.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The code stays owned by root: the service can read it but not change it.
COPY . .
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent shop
USER shop

ENV ENVIRONMENT=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=2
EXPOSE 8000

# Liveness only: /ready (database and Redis) is for the load balancer, which should stop sending, not restart.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['PORT']}/health\", timeout=2)"]

# The same script the multi-process tests start: `alembic upgrade head`, then gunicorn with uvicorn workers.
CMD ["scripts/start.sh"]
