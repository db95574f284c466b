# The ccpulse image: the three processes share it (deploy/docker-compose.yml picks the command).
FROM node:20-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY services services
COPY ingest ingest
COPY aggregator aggregator
COPY api api
COPY simulator simulator
RUN pip install --no-cache-dir .
COPY web/basic.html web/basic.html
COPY --from=web /web/dist web/dist
USER nobody
