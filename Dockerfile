# The ccpulse image: the three processes share it and its one entry point, `ccpulse ingest|
# aggregator|api` (deploy/docker-compose.yml picks the subcommand).
# Python packages come from requirements/prod.lock (hash-checked, the versions CI tested); the
# embedded broker and Redis (the `embedded` extra) are not in it: production uses Kafka and Redis.
FROM node:22-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM python:3.11-slim
WORKDIR /app
COPY requirements/prod.lock requirements/prod.lock
RUN pip install --no-cache-dir --require-hashes -r requirements/prod.lock
COPY pyproject.toml README.md ./
COPY ccpulse ccpulse
COPY services services
COPY ingest ingest
COPY aggregator aggregator
COPY api api
COPY simulator simulator
RUN pip install --no-cache-dir --no-deps .
COPY web/basic.html web/basic.html
COPY --from=web /web/dist web/dist
# One health check for the three commands: deploy/healthcheck.py picks the check from PID 1's
# command (/readyz for ingest and api, a fresh lag report in Redis for the aggregator).
COPY deploy/healthcheck.py deploy/healthcheck.py
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
EXPOSE 8000 8001
# nobody, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 65534:65534
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "/app/deploy/healthcheck.py"]
