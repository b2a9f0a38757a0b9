# The gateway as a container: slim Python, non-root, health-checked.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY adapters ./adapters
COPY sandbox ./sandbox
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /app gateway
WORKDIR /app
COPY --from=build /install /usr/local
COPY config ./config
COPY mappings ./mappings
COPY gateway ./gateway
COPY adapters ./adapters
COPY sandbox ./sandbox
RUN mkdir -p /app/var && chown gateway /app/var
USER gateway
ENV GATEWAY_CONFIG=/app/config/gateway.toml PYTHONUNBUFFERED=1
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
CMD ["gateway", "serve"]
