# The gateway as a container: slim Python, non-root, health-checked.
#
# The packages (gateway, adapters, sandbox) are installed with their package data — the
# JSON Schema and OpenAPI files, the store's SQL, the sandbox people — so the runtime
# stage needs only what the configuration names by relative path: config/ (with the WSDL
# copies) and mappings/, both resolved against /app (the folder above config/).
#
# Default configuration: config/gateway.production.toml (listens on 0.0.0.0, PostgreSQL,
# signed requests). It refuses to start without its secrets in the environment
# (GATEWAY_PLATFORM_KEYS at least); see docs/operations.md. Mount your own file over it
# or set GATEWAY_CONFIG to another path.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY adapters ./adapters
COPY sandbox ./sandbox
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin gateway
WORKDIR /app
COPY --from=build /install /usr/local
COPY config ./config
COPY mappings ./mappings
# Writable by the gateway only: var/ (an embedded SQLite store, if one is configured) and the
# file-exchange folders (a named volume mounted here takes this ownership when created).
RUN mkdir -p /app/var /srv/exchange/hpf && chown -R gateway /app/var /srv/exchange
USER gateway
ENV GATEWAY_CONFIG=/app/config/gateway.production.toml \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
EXPOSE 8080
# Liveness only (/healthz); readiness (/readyz: store and schema) is for the load balancer.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
# SIGTERM (docker stop) is a graceful shutdown: give it longer than the default 10 s
# (docker run --stop-timeout 30, Compose stop_grace_period: 30s).
STOPSIGNAL SIGTERM
CMD ["gateway", "serve"]
