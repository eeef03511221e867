# syntax=docker/dockerfile:1
# capacity-service image: the API (CMD) and the one-shot migration (docker-compose.yml runs
# `capacity-service migrate` from the same image before the API starts).
# Two stages: the build stage resolves uv.lock with a pinned uv; the runtime stage gets only the
# virtual environment and the sources, runs as an unprivileged user and has no uv, no compiler.

FROM ghcr.io/astral-sh/uv:0.13.10 AS uv

FROM python:3.11-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /app
# dependencies first (cached until uv.lock changes), then the project itself
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY alembic.ini ./
COPY alembic ./alembic
COPY service ./service
RUN uv sync --frozen --no-dev

FROM python:3.11-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 capacity \
 && useradd --system --uid 10001 --gid capacity --home-dir /var/lib/capacity-service --create-home capacity
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CAPACITY_HOST=0.0.0.0 \
    CAPACITY_PORT=8000 \
    CAPACITY_WORKERS=2 \
    CAPACITY_LOG_FORMAT=json \
    CAPACITY_GRACEFUL_SHUTDOWN_S=20 \
    CAPACITY_DATA_DIR=/var/lib/capacity-service
USER 10001:10001
EXPOSE 8000
# exec form; the probe reads CAPACITY_PORT, so it follows a changed port
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["capacity-service", "healthcheck"]
STOPSIGNAL SIGTERM
CMD ["capacity-service", "serve"]
