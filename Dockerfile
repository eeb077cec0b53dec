# syntax=docker/dockerfile:1
# One image for every process of the scheduled-jobs service: web (gunicorn), worker and beat (celery), migrate.
# compose.yaml runs it; see .env.example for the settings it needs at run time.

# --- graphiql: GraphiQL's browser files from npm, at package-lock.json's versions (make graphiql does the same), so
# GRAPHQL_GRAPHIQL=1 gives a working page that loads nothing from a CDN. Only those files leave this stage: the image
# has no Node, and the service never needs it.
FROM node:24.11.1-slim AS graphiql
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts --no-audit --no-fund && npm run assets

# --- build: the project and its runtime dependencies in a virtualenv (no dev extras: no pytest, no ruff).
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml ./
COPY pointscene ./pointscene
COPY jobs ./jobs
COPY configs ./configs
COPY --from=graphiql /src/pointscene/graphql/static/graphiql ./pointscene/graphql/static/graphiql
# The s3 extra: the service's storage is an S3-compatible object store in every deployment compose.yaml makes.
RUN pip install '.[s3]'

# --- runtime
FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    VAR_DIR=/app/var \
    MEDIA_ROOT=/app/var/media \
    STATIC_ROOT=/app/staticfiles \
    WEB_CONCURRENCY=2

# A fixed numeric uid/gid, so orchestrators can check "non-root" and volumes keep one owner across rebuilds.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# gunicorn.conf.py: gunicorn's hooks (it reads the file from its working directory).
COPY manage.py gunicorn.conf.py ./

# Static files (the admin's) are collected into the image. Settings must import for that: CONFIGS_DEV_KEY=0 makes
# CONFIG_ENCRYPTION_KEYS mandatory and DEBUG=0 a SECRET_KEY (a published one is refused), so this one step gets
# throwaway keys generated on the spot; they are not kept in any layer's environment, and the real keys only ever
# come from the run-time environment.
# /app/var (job logs under media/) is the only place the service writes; compose mounts a volume there.
RUN CONFIG_ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(48))')" \
    CONFIGS_DEV_KEY=0 \
    DEBUG=0 \
    python manage.py collectstatic --no-input \
 && mkdir -p /app/var/media /app/var/state \
 && chown -R app:app /app/var

USER 10001:10001
EXPOSE 8000

# Every command starts through the entrypoint: it empties this container's Prometheus multiprocess folder
# (PROMETHEUS_MULTIPROC_DIR, set by compose.yaml) and drops empty FLOWER_* options, then execs the command.
ENTRYPOINT ["python", "-m", "pointscene.entrypoint"]

# Workers: gunicorn reads WEB_CONCURRENCY itself (default above, override at run time); GUNICORN_CMD_ARGS adds options.
# Heartbeat files in memory (/dev/shm), and no control socket: it would go to $HOME, which the app user cannot write.
CMD ["gunicorn", "pointscene.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-", \
     "--worker-tmp-dir", "/dev/shm", "--no-control-socket"]
