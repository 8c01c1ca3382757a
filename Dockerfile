FROM python:3.11-slim
WORKDIR /srv/idgraph
COPY pyproject.toml README.md ./
COPY app ./app
COPY cypher ./cypher
RUN pip install --no-cache-dir -e . && useradd --system --uid 10001 idgraph && mkdir -p /var/lib/idgraph \
    && chown idgraph /var/lib/idgraph
USER idgraph
ENV IDGRAPH_VAR_DIR=/var/lib/idgraph
EXPOSE 8000
CMD ["sh", "-c", "idgraph migrate && idgraph serve --host 0.0.0.0 --port 8000"]
