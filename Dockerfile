# idgraph from its wheel: the Cypher files, migrations, default strategy, demo data and the browser libraries are
# package data (setup.py copies cypher/ and the npm files app/web/vendor.json lists into the wheel).
FROM node:20-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY app ./app
COPY cypher ./cypher
COPY --from=web /src/web/node_modules ./web/node_modules
RUN pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim
COPY --from=wheel /dist /dist
RUN pip install --no-cache-dir /dist/*.whl && rm -rf /dist \
    && useradd --system --uid 10001 idgraph && mkdir -p /var/lib/idgraph && chown idgraph /var/lib/idgraph
USER idgraph
WORKDIR /var/lib/idgraph
ENV IDGRAPH_VAR_DIR=/var/lib/idgraph
EXPOSE 8000
CMD ["sh", "-c", "idgraph migrate && idgraph serve --host 0.0.0.0 --port 8000"]
