"""Hostile input against a real `idgraph serve`: generated GraphQL operations (hypothesis-graphql), malformed and
oversized HTTP requests, and injection attempts in every string argument.

Whatever arrives, the service answers 2xx or 4xx, never 500; every GraphQL error carries one of the contract's codes,
never INTERNAL; and strings are data, never Cypher: the graph the test wrote before the attack is still there, and a
suspicious string is either refused as INVALID_INPUT or stored and read back exactly as sent.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema

from app.db.driver import AsyncDriver
from app.graphql.schema import build_schema
from tests.failure import privacy
from tests.failure.server import Served, error_codes, graphql_body

pytestmark = [pytest.mark.neo4j, pytest.mark.failure]

# The contract's codes (shared/API.md) a client may see: all but INTERNAL, which must never appear.
CODES = frozenset(
    (
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "INVALID_INPUT",
        "NOT_FOUND",
        "CONFLICT",
        "SUPPRESSED",
        "DATABASE_UNAVAILABLE",
        "TIMEOUT",
    )
)
TOO_LARGE = "PAYLOAD_TOO_LARGE"  # the guard's code for a 413 (not in the contract's list)
SDL = str(build_schema())

PAYLOADS = (
    "' }) MATCH (n) DETACH DELETE n //",
    '" }) MATCH (n) DETACH DELETE n //',
    "x'}) WITH 1 AS x MATCH (n) DETACH DELETE n RETURN 1 //",
    "'; DROP CONSTRAINT profile_id; //",
    "$profile_ids",
    "$value",
    "{value}",
    "`Profile`",
    "a` DETACH DELETE n //",
    "\\' OR 1=1 --",
    "CALL db.clearQueryCaches()",
    "a\x00b",
    "\u202egnp.exe",
    "zero\u200bwidth\u200djoiner",
    "\uff41\uff43\uff43\uff4f\uff55\uff4e\uff54",
    "e\u0301\u0301\u0301",
    "\U0001f600\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "{{7*7}}",
    "${jndi:ldap://127.0.0.1/a}",
    "<script>alert(1)</script>",
    "line\nbreak\r\nCRLF\ttab",
    "constructor",
    "x" * 5000,
)

SENTINEL = (
    ("crm", "sentinel-1", [("phone_number", "+1 303 555 0190"), ("email_address", "sentinel.one@example.com")]),
    ("ivr", "sentinel-2", [("phone_number", "(303) 555-0190"), ("account_id", "ACCT-SENTINEL")]),
    ("webchat", "sentinel-3", [("email_address", "sentinel.three@example.com")]),
)

UPSERT = """mutation($input: ProfileInput!) {
  upsertProfile(input: $input) {
    profile { id source sourceId attributes identities { key value } }
    rejected { key reason }
  }
}"""
CUSTOMER = """query($id: ID!) {
  customer(profileId: $id) { id profiles { id source sourceId attributes } identities { key value } merges { reason } }
}"""


def check(response: httpx.Response) -> list[str]:
    """The response is a 2xx or 4xx; its GraphQL errors carry contract codes, never INTERNAL. Returns the codes."""
    assert response.status_code < 500, f"HTTP {response.status_code}: {response.text[:500]}"
    try:
        body = response.json()
    except ValueError:
        assert response.status_code >= 400, f"a {response.status_code} without a JSON body: {response.text[:200]}"
        return []
    codes = error_codes(body)
    allowed = CODES | {TOO_LARGE} if response.status_code == 413 else CODES
    assert all(code in allowed for code in codes), f"codes {codes}: {response.text[:500]}"
    return codes


Records = tuple[tuple[str, str, list[tuple[str, str]]], ...]


def seed(http: httpx.Client, records: Records = SENTINEL, *, merge: bool = True) -> list[str]:
    """The graph the attacks must leave alone: two profiles joined by a phone number, and one merged into them."""
    ids = []
    privacy.remember(v for _, _, identities in records for _, v in identities)
    for source, source_id, identities in records:
        variables = {
            "input": {
                "source": source,
                "sourceId": source_id,
                "identities": [{"key": k, "value": v} for k, v in identities],
                "attributes": {"tier": "Gold"},
            }
        }
        response = http.post("/graphql", json=graphql_body(UPSERT, variables))
        assert check(response) == [], response.text
        ids.append(response.json()["data"]["upsertProfile"]["profile"]["id"])
    if merge:
        query = "mutation($s: ID!, $t: ID!) { mergeProfiles(sourceProfileId: $s, targetProfileId: $t) { id } }"
        assert check(http.post("/graphql", json=graphql_body(query, {"s": ids[2], "t": ids[0]}))) == []
    return ids


def sentinel_view(http: httpx.Client, ids: list[str]) -> Any:
    response = http.post("/graphql", json=graphql_body(CUSTOMER, {"id": ids[0]}))
    assert check(response) == [], response.text
    customer = response.json()["data"]["customer"]
    assert customer is not None, "the sentinel customer is gone"
    return customer


def assert_sentinel_intact(http: httpx.Client, ids: list[str], before: Any) -> None:
    after = sentinel_view(http, ids)
    assert after == before, "the sentinel customer changed"
    assert {p["id"] for p in after["profiles"]} == set(ids)


def _call(http: httpx.Client, query: str, variables: dict[str, Any]) -> tuple[list[str], Any]:
    response = http.post("/graphql", json=graphql_body(query, variables))
    codes = check(response)
    return codes, response.json().get("data")


@pytest.fixture
def http(served: Served, driver: AsyncDriver) -> Iterator[httpx.Client]:
    """A client of the real server on a clean graph (the `driver` fixture empties it)."""
    with served.client() as client:
        yield client


# -- generated operations --------------------------------------------------------------------------------------------


def _string_node(value: str) -> graphql.StringValueNode:
    return graphql.StringValueNode(value=value)


# Values the fuzzer may use besides hostile and random text, so that operations get past validation and reach the
# database: the strategy's keys, sources, and identities of a playground it may write, merge and erase at will. The
# sentinel's ids, records and values are never offered, so nothing legitimate can change it.
PLAYGROUND = (
    ("crm", "play-1", [("phone_number", "+1 512 555 0171"), ("email_address", "play.one@example.org")]),
    ("ivr", "play-2", [("phone_number", "512-555-0171"), ("account_id", "ACCT-PLAY-1")]),
    ("webchat", "play-3", [("email_address", "play.three@example.org")]),
)
PLAYGROUND_VALUES = (
    "+1 512 555 0171",
    "(512) 555-0172",
    "play.one@example.org",
    "PLAY.THREE@EXAMPLE.ORG",
    "ACCT-PLAY-1",
)
REALISTIC = (
    "phone_number",
    "email_address",
    "account_id",
    "crm",
    "ivr",
    "webchat",
    "play-1",
    "tier",
    "Platinum",
    "2026-11-20T10:00:00Z",
    "fuzz-request-1",
    *PLAYGROUND_VALUES,
)
_JSON_NAMES = st.one_of(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True), st.sampled_from(("tier", "id")))


def strings(ids: list[str]) -> st.SearchStrategy[graphql.ValueNode]:
    """Mostly values that get past validation, often hostile ones, sometimes any text."""
    realistic = st.sampled_from(REALISTIC + tuple(ids))
    hostile = st.sampled_from(PAYLOADS)
    anything = st.text(max_size=30)
    return st.integers(0, 9).flatmap(lambda n: realistic if n < 6 else hostile if n < 8 else anything).map(_string_node)


def json_values(text: st.SearchStrategy[graphql.ValueNode]) -> st.SearchStrategy[graphql.ValueNode]:
    scalars: st.SearchStrategy[graphql.ValueNode] = st.one_of(
        text,
        st.integers(-(2**70), 2**70).map(lambda n: graphql.IntValueNode(value=str(n))),
        st.floats(allow_nan=False, allow_infinity=False).map(lambda f: graphql.FloatValueNode(value=repr(f))),
        st.booleans().map(lambda b: graphql.BooleanValueNode(value=b)),
        st.just(graphql.NullValueNode()),
    )
    return st.one_of(
        st.dictionaries(_JSON_NAMES, scalars, max_size=4).map(
            lambda d: graphql.ObjectValueNode(
                fields=tuple(graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v) for k, v in d.items())
            )
        ),
        scalars,
        st.lists(scalars, max_size=3).map(lambda xs: graphql.ListValueNode(values=tuple(xs))),
    )


def scalars(ids: list[str]) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    text = strings(ids)
    return {"String": text, "ID": text, "JSON": json_values(text)}


FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same operations on every run: a failure is reproducible and CI is not flaky
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Fuzz:
    """How often each outcome was seen, and how many operations got as far as a result."""

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}
        self.repeated = 0  # reads sent twice

    def count(self, response: httpx.Response, codes: list[str]) -> None:
        key = ",".join(sorted(set(codes))) or "ok"
        data = response.json().get("data") if response.status_code == 200 else None
        if isinstance(data, dict) and any(v is not None for v in data.values()):
            key += "+data"
        self.outcomes[key] = self.outcomes.get(key, 0) + 1


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", [Mode.POSITIVE, Mode.NEGATIVE], ids=["valid", "invalid"])
def test_generated_operations_never_fail_with_a_500_or_an_unexpected_error(http: httpx.Client, mode: Mode) -> None:
    ids = seed(http)
    before = sentinel_view(http, ids)
    playground = seed(http, PLAYGROUND, merge=False)
    privacy.remember(PLAYGROUND_VALUES)
    fuzz = Fuzz()

    @FUZZ
    @given(document=from_schema(SDL, custom_scalars=scalars(playground), mode=mode))
    def attack(document: str) -> None:
        response = http.post("/graphql", json={"query": document})
        fuzz.count(response, check(response))
        if response.status_code == 200 and not document.lstrip().startswith(("mutation", "subscription")):
            # A read sent again takes the prepared path once its document validated (app/graphql/prepared.py):
            # it must answer exactly as strawberry's whole path did.
            again = http.post("/graphql", json={"query": document})
            assert (again.status_code, again.json()) == (200, response.json()), document
            fuzz.repeated += 1

    attack()
    assert_sentinel_intact(http, ids, before)
    print(mode.name, fuzz.outcomes, f"{fuzz.repeated} reads sent twice")


def test_explaining_a_profile_with_itself_says_connected_without_steps(http: httpx.Client) -> None:
    pid = seed(http, (("crm", "explain-self", [("account_id", "ACCT-EXPLAIN")]),), merge=False)[0]
    query = "query($a: ID!) { explain(profileA: $a, profileB: $a) { connected steps { via } } }"
    codes, data = _call(http, query, {"a": pid})
    assert codes == [], codes
    assert data["explain"] == {"connected": True, "steps": []}


def test_an_empty_batch_of_profiles_is_not_an_internal_error(http: httpx.Client) -> None:
    codes, data = _call(http, "mutation { upsertProfiles(inputs: []) { created } }", {})
    if not codes:
        assert data == {"upsertProfiles": []}


# -- injection in every string argument ------------------------------------------------------------------------------


# Each string argument of the schema, with the payload as $s (String) or $p (ID); $t is a real profile id, $a an
# attributes object whose one name is the payload. The queries go in one document (fields run side by side, an
# error in one does not stop the others); each mutation goes alone (they run in turn, and a failed one, being
# non-null, would stop those after it).
QUERY_ATTACKS = (
    "resolve(identities: [{key: $s, value: $s}]) { status }",
    'resolve(identities: [{key: "account_id", value: $s}], consistencyToken: $s) { status }',
    'resolve(identities: [{key: "email_address", value: $s}]) { status }',
    "customer(profileId: $p, consistencyToken: $s) { id }",
    "profile(id: $p) { id }",
    "explain(profileA: $p, profileB: $t) { connected }",
    "erasurePreview(profileId: $p) { profileIds }",
    "erasureReceipt(requestId: $p) { requestId }",
    "normalize(key: $s, value: $s) { value }",
    'normalize(key: "phone_number", value: $s) { value }',
)
MUTATION_ATTACKS = (
    'upsertProfile(input: {source: $s, sourceId: "k", identities: []}) { created }',
    'upsertProfile(input: {source: "crm", sourceId: "key-attack", identities: [{key: $s, value: $s}], '
    "attributes: {a: 1}}) { rejected { key reason } }",
    'upsertProfile(input: {source: "crm", sourceId: "name-attack", identities: [], attributes: $a}) { created }',
    "linkIdentities(profileId: $p, identities: [{key: $s, value: $s}], source: $s) { created }",
    'linkIdentities(profileId: $t, identities: [{key: "email_address", value: $s}], source: $s) { created }',
    "mergeProfiles(sourceProfileId: $p, targetProfileId: $t, reason: $s) { id }",
    "unmergeProfiles(sourceProfileId: $t, targetProfileId: $p) { id }",
    "unlinkIdentity(profileId: $t, identity: {key: $s, value: $s}) { id }",
    "eraseCustomer(profileId: $p, requestId: $p, reason: $s) { requestId }",
    "eraseProfile(profileId: $p, requestId: $p, reason: $s) { requestId }",
)
VARIABLES = {"p": "ID!", "s": "String!", "t": "ID!", "a": "JSON"}


def _document(operation: str, fields: tuple[str, ...]) -> str:
    body = " ".join(f"f{n}: {field}" for n, field in enumerate(fields))
    used = [name for name in VARIABLES if f"${name}" in body]
    return f"{operation}({', '.join(f'${name}: {VARIABLES[name]}' for name in used)}) {{ {body} }}"


ATTACKS = (_document("query", QUERY_ATTACKS), *(_document("mutation", (field,)) for field in MUTATION_ATTACKS))


RESOLVE_ACCOUNT = """query($p: String!) {
  resolve(identities: [{key: "account_id", value: $p}]) { status customer { profiles { id } } }
}"""
MERGE_WITH_REASON = """mutation($s: ID!, $t: ID!, $r: String) {
  mergeProfiles(sourceProfileId: $s, targetProfileId: $t, reason: $r) { merges { reason } }
}"""
ERASE_WITH_REASON = """mutation($p: ID!, $q: ID!, $r: String!) {
  eraseCustomer(profileId: $p, requestId: $q, reason: $r) { reason }
}"""


@pytest.mark.timeout(180)
def test_injection_attempts_in_every_string_argument_are_refused_or_stored_verbatim(http: httpx.Client) -> None:
    schema = graphql.build_schema(SDL)
    for document in ATTACKS:  # an attack the schema refuses would test nothing
        assert graphql.validate(schema, graphql.parse(document)) == [], document
    ids = seed(http)
    before = sentinel_view(http, ids)
    target = seed(http, (("crm", "attack-target", [("account_id", "ACCT-TARGET")]),), merge=False)[0]
    for n, payload in enumerate(PAYLOADS):
        # As data: the payload as a record id, an account id and an attribute value.
        variables: dict[str, Any] = {
            "input": {
                "source": "crm",
                "sourceId": payload,
                "identities": [{"key": "account_id", "value": payload}],
                "attributes": {"note": payload},
            }
        }
        codes, data = _call(http, UPSERT, variables)
        if codes:
            assert codes == ["INVALID_INPUT"], (payload[:80], codes)
        else:
            profile = data["upsertProfile"]["profile"]
            assert profile["sourceId"] == payload.strip(), "the record id was not stored as sent"
            assert profile["attributes"]["note"] == payload, "the attribute was not stored as sent"
            rejected = data["upsertProfile"]["rejected"]
            if not rejected:
                assert profile["identities"] == [{"key": "account_id", "value": payload.strip()}]
                codes, found = _call(http, RESOLVE_ACCOUNT, {"p": payload})
                assert not codes and found["resolve"]["status"] == "FOUND", (payload[:80], codes, found)
                assert profile["id"] in {p["id"] for p in found["resolve"]["customer"]["profiles"]}
        # In every other string argument.
        values = {"p": payload, "s": payload, "t": target, "a": {payload: "v"}}
        for document in ATTACKS:
            _call(http, document, {name: value for name, value in values.items() if f"${name}:" in document})
        # A reason is stored and read back verbatim: merge two scratch profiles and erase them with it.
        if n % 3 == 0 and len(payload) < 1000:
            scratch = []
            for m in range(2):
                record: dict[str, Any] = {"source": "scratch", "sourceId": f"s{n}-{m}", "identities": []}
                codes, data = _call(http, UPSERT, {"input": {**record, "attributes": {"n": n}}})
                assert not codes, codes
                scratch.append(data["upsertProfile"]["profile"]["id"])
            codes, data = _call(http, MERGE_WITH_REASON, {"s": scratch[0], "t": scratch[1], "r": payload})
            assert not codes and data["mergeProfiles"]["merges"][0]["reason"] == payload, codes
            codes, data = _call(http, ERASE_WITH_REASON, {"p": scratch[0], "q": f"req-{n}", "r": payload})
            assert not codes and data["eraseCustomer"]["reason"] == payload.strip(), codes

    assert_sentinel_intact(http, ids, before)


async def test_the_schema_survives_the_injection_attempts(driver: AsyncDriver, served: Served) -> None:
    """Nothing an attack sent became Cypher: every constraint and index is still there."""
    records, _, _ = await driver.execute_query("SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names")
    names = set(records[0]["names"])
    assert {"profile_id", "profile_source_record", "identity_key_value", "suppression_hash"} <= names


# -- malformed and oversized requests --------------------------------------------------------------------------------

MALFORMED = [
    pytest.param(b"\x00\x01\x02\xff" * 64, "application/json", id="binary-junk"),
    pytest.param(b'{"query": ', "application/json", id="truncated-json"),
    pytest.param(b"{'query': '{ strategy { name } }'}", "application/json", id="single-quoted-json"),
    pytest.param(b'{"query": "{ strategy { name } }"}', "text/plain", id="text-plain"),
    pytest.param(b"query=%7B+strategy+%7B+name+%7D+%7D", "application/x-www-form-urlencoded", id="form"),
    pytest.param(b"{ strategy { name } }", "application/graphql", id="application-graphql"),
    pytest.param(b'{"query": "{ strategy { name } }"}', "", id="no-content-type"),
    pytest.param(b'[{"query": "{ strategy { name } }"}]', "application/json", id="batch"),
    pytest.param(b'{"query": 5}', "application/json", id="query-not-a-string"),
    pytest.param(b'{"query": "{ strategy { name } }", "variables": "x"}', "application/json", id="variables-string"),
    pytest.param(b'"{ strategy { name } }"', "application/json", id="json-string"),
    pytest.param(b"null", "application/json", id="json-null"),
    pytest.param(b"42", "application/json", id="json-number"),
    pytest.param(b'{"query": "\xff\xfe"}', "application/json", id="invalid-utf8"),
    pytest.param(
        b'{"query": "{ strategy { name } }", "variables": {"x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}",
        "application/json",
        id="deeply-nested-json",
    ),
]


@pytest.mark.parametrize(("body", "content_type"), MALFORMED)
def test_malformed_bodies_are_refused_with_a_4xx_never_a_500(served: Served, body: bytes, content_type: str) -> None:
    with served.client() as client:
        response = client.post("/graphql", content=body, headers={"content-type": content_type})
    check(response)
    assert 400 <= response.status_code < 500, response.status_code


def test_transport_refusals_carry_the_contracts_error_shape(served: Served) -> None:
    with served.client() as client:
        response = client.post("/graphql", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert error_codes(response.json()) == ["INVALID_INPUT"]


def test_deeply_nested_documents_are_refused_as_invalid_input(http: httpx.Client) -> None:
    documents = [
        "query { " + "a { " * 600 + "}" * 601,
        "query { resolve(identities: " + "[" * 900 + "]" * 900 + ") { status } }",
        "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        "query { " + " ".join(f"a{n}: strategy {{ name }}" for n in range(100)) + " }",
        "query { strategy { " + "name " * 3000 + "} }",
    ]
    for document in documents:
        codes = check(http.post("/graphql", json={"query": document}))
        assert codes == ["INVALID_INPUT"], (document[:60], codes)


def test_oversized_bodies_are_refused_with_413_whether_or_not_they_declare_a_length(served: Served) -> None:
    big = json.dumps({"query": "{ strategy { name } }", "variables": {"pad": "x" * 2_000_000}}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    with served.client() as client:
        declared = client.post("/graphql", content=big, headers={"content-type": "application/json"})
        chunked = client.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    for response in (declared, chunked):
        assert response.status_code == 413, response.text[:200]
        assert error_codes(response.json()) == [TOO_LARGE]

    # A length that is not a number, sent as raw HTTP (clients refuse to send it).
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw:
        raw.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + served.token.encode() + b"\r\nContent-Length: 12abc\r\n\r\n{}"
        )
        status_line = raw.recv(4096).split(b"\r\n", 1)[0]
    assert status_line.split()[1] in (b"400", b"413"), status_line


@pytest.mark.parametrize("where", ["sourceId", "identity", "attribute"])
def test_strings_that_are_not_unicode_text_are_refused_as_invalid_input(http: httpx.Client, where: str) -> None:
    value = '"a\\ud800b"'
    source_id = value if where == "sourceId" else '"lone-1"'
    identity = value if where == "identity" else '"ACCT-LONE"'
    attribute = value if where == "attribute" else '"x"'
    body = (
        '{"query": "mutation($input: ProfileInput!) { upsertProfile(input: $input) { created } }", '
        '"variables": {"input": {"source": "crm", "sourceId": ' + source_id + ", "
        '"identities": [{"key": "account_id", "value": ' + identity + '}], "attributes": {"a": ' + attribute + "}}}}"
    )
    response = http.post("/graphql", content=body.encode(), headers={"content-type": "application/json"})
    assert check(response) == ["INVALID_INPUT"], response.text[:300]


@pytest.mark.timeout(120)
def test_random_bytes_are_refused_with_a_4xx_never_a_500(served: Served) -> None:
    with served.client() as client:

        @settings(max_examples=100, deadline=None, derandomize=True, database=None)
        @given(body=st.binary(max_size=256))
        def attack(body: bytes) -> None:
            response = client.post("/graphql", content=body, headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, (body, response.status_code)

        attack()


# -- the REST API takes the same bodies ------------------------------------------------------------------------------

REST = "/api/v2/customer-data-platform/identities"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(f"{REST}/resolve", b"\xff\xfe{", id="resolve-invalid-utf8"),
        pytest.param(f"{REST}/resolve", b"[1, 2]", id="resolve-json-list"),
        pytest.param(
            f"{REST}/resolve",
            b'{"identities": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
            id="resolve-deeply-nested-json",
        ),
        pytest.param(
            REST,
            b'{"source": "crm", "source_id": "rest-lone", "identities": [{"key": "account_id", "value": "a\\ud800b"}]}',
            id="push-lone-surrogate",
        ),
        pytest.param(
            REST,
            b'{"source": "crm", "source_id": "\' }) MATCH (n) DETACH DELETE n //", "identities": []}',
            id="push-injection",
        ),
    ],
)
def test_rest_bodies_are_refused_with_a_4xx_never_a_500(http: httpx.Client, path: str, body: bytes) -> None:
    response = http.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code < 500, response.text[:300]


@pytest.mark.parametrize(("body", "content_type"), MALFORMED)
def test_every_malformed_body_is_refused_in_the_contracts_error_shape(
    served: Served, body: bytes, content_type: str
) -> None:
    with served.client() as client:
        response = client.post("/graphql", content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text[:300]
    assert error_codes(response.json()) == ["INVALID_INPUT"], response.text[:300]


# Bodies whose strings are not all Unicode text, in every place a string can be; and one whose surrogates pair up.
UPSERT_ONE = "mutation($input: ProfileInput!) { upsertProfile(input: $input) { profile { attributes } } }"
NOT_TEXT = [
    pytest.param('{"query": "{ strategy { name } }", "variables": {"\\udc00": 1}}', id="variable-name-low-surrogate"),
    pytest.param(
        '{"query": ' + json.dumps(UPSERT_ONE) + ', "variables": {"input": {"source": "crm", '
        '"sourceId": "lone-key", "identities": [], "attributes": {"a\\ud800": "x"}}}}',
        id="attribute-name",
    ),
    pytest.param('{"query": "{ strategy { name } } # \\ud800"}', id="in-the-document"),
    pytest.param('{"query": "query Q { strategy { name } }", "operationName": "Q\\udbff"}', id="operation-name"),
    pytest.param('{"query": "{ strategy { name } }", "variables": {"x": "\\udc00\\ud800"}}', id="pair-reversed"),
    pytest.param('{"query": "{ strategy { name } }", "extensions": {"x": ["\\ud800"]}}', id="extensions"),
]


@pytest.mark.parametrize("body", NOT_TEXT)
def test_lone_surrogates_anywhere_in_the_body_are_refused_as_invalid_input(http: httpx.Client, body: str) -> None:
    response = http.post("/graphql", content=body.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text[:300]
    assert error_codes(response.json()) == ["INVALID_INPUT"], response.text[:300]


def test_surrogates_encoded_as_utf8_bytes_are_refused_as_invalid_input(http: httpx.Client) -> None:
    """json.loads decodes bytes with surrogatepass: ED A0 80 (a surrogate in UTF-8 form) becomes a lone surrogate."""
    body = b'{"query": "{ strategy { name } }", "variables": {"x": "a\xed\xa0\x80b"}}'
    response = http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text[:300]
    assert error_codes(response.json()) == ["INVALID_INPUT"]


def test_a_surrogate_pair_escape_is_text_and_is_stored_as_its_character(http: httpx.Client) -> None:
    body = (
        '{"query": ' + json.dumps(UPSERT_ONE) + ', "variables": {"input": {"source": "crm", '
        '"sourceId": "pair-1", "identities": [], "attributes": {"mood": "\\ud83d\\ude00"}}}}'
    )
    response = http.post("/graphql", content=body.encode(), headers={"content-type": "application/json"})
    assert check(response) == [], response.text[:300]
    assert response.json()["data"]["upsertProfile"]["profile"]["attributes"] == {"mood": "\U0001f600"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\xff\xfe{", id="invalid-utf8"),
        pytest.param(b'"identities"', id="json-string"),
        pytest.param(b'{"identities": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", id="deeply-nested-json"),
        pytest.param(b'{"identities": [{"key": "account_id", "value": "a\\udc00"}]}', id="lone-surrogate-value"),
        pytest.param(b'{"identities": [{"key\\ud800": "account_id", "value": "a"}]}', id="lone-surrogate-name"),
        pytest.param(b'{"identities": [{"key": "account_id", "value": "a\xed\xb0\x80"}]}', id="surrogate-as-utf8"),
    ],
)
def test_rest_bodies_that_are_not_json_objects_of_text_are_refused_as_invalid_input(
    http: httpx.Client, body: bytes
) -> None:
    response = http.post(f"{REST}/resolve", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text[:300]
    assert error_codes(response.json()) == ["INVALID_INPUT"]


def _access_line(served: Served, request_id: str, wait_s: float = 5.0) -> str | None:
    """The access-log line of a request, written after its response (so it may lag behind it a little)."""
    deadline = time.monotonic() + wait_s
    while True:
        for line in served.log.read_text(errors="replace").splitlines():
            if "idgraph.access" in line and f"request_id={request_id}" in line:
                return line
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def test_a_deeply_nested_body_still_gets_its_access_log_line(served: Served) -> None:
    body = b'{"query": "{ strategy { name } }", "variables": {"x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
    request_id = "nested-json-access-log"
    with served.client() as client:
        response = client.post(
            "/graphql", content=body, headers={"content-type": "application/json", "x-request-id": request_id}
        )
    assert response.status_code == 400
    line = _access_line(served, request_id)
    assert line is not None, "no access-log line for the request"
    assert "outcome=INVALID_INPUT" in line
