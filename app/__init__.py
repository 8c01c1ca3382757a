"""idgraph: deterministic customer identity resolution on Neo4j, served over GraphQL."""

__version__ = "0.1.0"
