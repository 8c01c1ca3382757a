// Contested identities (issue 19, cypher/contest_identities.cypher): /metrics counts them at every scrape
// (cypher/count_contested.cypher), through this index rather than a scan of every identity.
CREATE INDEX identity_contested IF NOT EXISTS
FOR (i:Identity) ON (i.contested);
