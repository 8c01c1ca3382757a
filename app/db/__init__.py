"""The Neo4j adapter: the only package that imports the neo4j driver."""
