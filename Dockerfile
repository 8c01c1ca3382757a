# The inspector's graph library comes from npm; the service itself needs only Python.
FROM node:20-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim
WORKDIR /srv/idgraph
COPY pyproject.toml README.md ./
COPY app ./app
COPY cypher ./cypher
COPY --from=web /web/node_modules ./web/node_modules
RUN pip install --no-cache-dir -e . && useradd --system --uid 10001 idgraph && mkdir -p /var/lib/idgraph \
    && chown idgraph /var/lib/idgraph
USER idgraph
ENV IDGRAPH_VAR_DIR=/var/lib/idgraph
EXPOSE 8000
CMD ["sh", "-c", "idgraph migrate && idgraph serve --host 0.0.0.0 --port 8000"]
