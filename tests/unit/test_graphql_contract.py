"""The contract: every type, field, argument, input field and enum value that shared/API.md's GraphQL section names
exists in the code's schema, under exactly that name, with a type a client written against the contract can use.

Adding around the contract is free (more fields, optional arguments, more operations); renaming, removing, or
making an argument stricter than the contract says is a breaking change, and fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import (
    DocumentNode,
    EnumTypeDefinitionNode,
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    GraphQLType,
    InputObjectTypeDefinitionNode,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    TypeNode,
    parse,
    parse_type,
    print_ast,
)

from app.config import REPO_ROOT
from app.graphql.schema import build_schema

CONTRACT_COPY = Path(__file__).with_name("api_contract.graphql")
API_MD = REPO_ROOT.parent / "shared" / "API.md"  # beside the repository on developers' machines and in CI


def contract_text() -> str:
    """The copy's SDL, without its header comment."""
    lines = CONTRACT_COPY.read_text(encoding="utf-8").splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "".join(lines)


def api_md_block(text: str) -> str:
    blocks = re.findall(r"```graphql\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, f"expected one ```graphql block in API.md, found {len(blocks)}"
    return str(blocks[0])


# -- comparing types ---------------------------------------------------------------------------------------------


def output_fits(contract: TypeNode, actual: GraphQLType) -> bool:
    """A client expecting `contract` can read a value of type `actual` (non-null where the contract allows null is
    fine: the client just never sees the null)."""
    if isinstance(contract, NonNullTypeNode):
        return isinstance(actual, GraphQLNonNull) and output_fits(contract.type, actual.of_type)
    if isinstance(actual, GraphQLNonNull):
        return output_fits(contract, actual.of_type)
    if isinstance(contract, ListTypeNode):
        return isinstance(actual, GraphQLList) and output_fits(contract.type, actual.of_type)
    assert isinstance(contract, NamedTypeNode)
    return isinstance(actual, GraphQLNamedType) and actual.name == contract.name.value


def input_fits(contract: TypeNode, actual: GraphQLType) -> bool:
    """Every value a client may send as `contract` is accepted as `actual` (nullable where the contract demands a
    value is fine; the reverse would refuse the contract's calls)."""
    if isinstance(contract, NonNullTypeNode):
        inner = actual.of_type if isinstance(actual, GraphQLNonNull) else actual
        return input_fits(contract.type, inner)
    if isinstance(actual, GraphQLNonNull):
        return False
    if isinstance(contract, ListTypeNode):
        return isinstance(actual, GraphQLList) and input_fits(contract.type, actual.of_type)
    assert isinstance(contract, NamedTypeNode)
    return isinstance(actual, GraphQLNamedType) and actual.name == contract.name.value


def optional(argument: GraphQLArgument | GraphQLInputField) -> bool:
    return not isinstance(argument.type, GraphQLNonNull) or argument.default_value is not None


def named_types(node: TypeNode) -> str:
    while not isinstance(node, NamedTypeNode):
        assert isinstance(node, NonNullTypeNode | ListTypeNode)
        node = node.type
    return node.name.value


def contract_problems(contract: DocumentNode, schema: GraphQLSchema) -> list[str]:
    """Every way `schema` breaks `contract`; empty when it keeps it."""
    problems: list[str] = []
    defined: set[str] = set()
    referenced: set[str] = set()
    for definition in contract.definitions:
        if isinstance(definition, ScalarTypeDefinitionNode):
            defined.add(definition.name.value)
            if not isinstance(schema.get_type(definition.name.value), GraphQLScalarType):
                problems.append(f"scalar {definition.name.value}: missing")
            continue
        assert isinstance(
            definition, ObjectTypeDefinitionNode | InputObjectTypeDefinitionNode | EnumTypeDefinitionNode
        ), f"the contract uses a kind of definition this test does not check: {definition.kind}"
        name = definition.name.value
        defined.add(name)
        actual = schema.get_type(name)
        if isinstance(definition, EnumTypeDefinitionNode):
            if not isinstance(actual, GraphQLEnumType):
                problems.append(f"enum {name}: missing")
                continue
            problems += [
                f"enum {name}: value {v.name.value} missing"
                for v in definition.values or ()
                if v.name.value not in actual.values
            ]
        elif isinstance(definition, InputObjectTypeDefinitionNode):
            if not isinstance(actual, GraphQLInputObjectType):
                problems.append(f"input {name}: missing")
                continue
            named = set()
            for field in definition.fields or ():
                named.add(field.name.value)
                referenced.add(named_types(field.type))
                got = actual.fields.get(field.name.value)
                if got is None:
                    problems.append(f"input {name}.{field.name.value}: missing")
                elif not input_fits(field.type, got.type):
                    problems.append(
                        f"input {name}.{field.name.value}: {got.type} does not accept {print_ast(field.type)}"
                    )
            problems += [
                f"input {name}.{extra}: required, but the contract does not send it"
                for extra, got in actual.fields.items()
                if extra not in named and not optional(got)
            ]
        else:
            if name == "Query":
                actual = schema.query_type
            elif name == "Mutation":
                actual = schema.mutation_type
            if not isinstance(actual, GraphQLObjectType):
                problems.append(f"type {name}: missing")
                continue
            for output in definition.fields or ():
                where = f"{name}.{output.name.value}"
                referenced.add(named_types(output.type))
                got_field = actual.fields.get(output.name.value)
                if got_field is None:
                    problems.append(f"{where}: missing")
                    continue
                if not output_fits(output.type, got_field.type):
                    problems.append(f"{where}: {got_field.type} is not readable as {print_ast(output.type)}")
                given = set()
                for argument in output.arguments or ():
                    given.add(argument.name.value)
                    referenced.add(named_types(argument.type))
                    got_argument = got_field.args.get(argument.name.value)
                    if got_argument is None:
                        problems.append(f"{where}({argument.name.value}:): missing")
                    elif not input_fits(argument.type, got_argument.type):
                        problems.append(
                            f"{where}({argument.name.value}:): {got_argument.type} does not accept "
                            f"{print_ast(argument.type)}"
                        )
                problems += [
                    f"{where}({extra}:): required, but the contract does not send it"
                    for extra, got_argument in got_field.args.items()
                    if extra not in given and not optional(got_argument)
                ]
    for name in sorted(referenced - defined):
        # Types the contract uses without defining them: the built-in scalars and JSON.
        if not isinstance(schema.get_type(name), GraphQLScalarType):
            problems.append(f"scalar {name}: missing")
    return problems


# -- the tests ---------------------------------------------------------------------------------------------------


def test_the_schema_keeps_every_name_and_type_of_the_api_contract() -> None:
    problems = contract_problems(parse(contract_text()), build_schema()._schema)

    assert problems == [], "the schema breaks shared/API.md:\n  " + "\n  ".join(problems)


def test_the_contract_copy_names_the_operations_clients_call() -> None:
    """Guards the parsing above: the copy really holds the contract (an empty copy would pass anything)."""
    document = parse(contract_text())
    fields = {
        f"{d.name.value}.{f.name.value}"
        for d in document.definitions
        if isinstance(d, ObjectTypeDefinitionNode)
        for f in d.fields or ()
    }

    assert {
        "Query.resolve",
        "Query.customer",
        "Query.profile",
        "Mutation.upsertProfile",
        "Mutation.upsertProfiles",
        "Mutation.mergeProfiles",
        "Mutation.eraseCustomer",
        "Resolution.matchedOn",
        "UpsertResult.consistencyToken",
        "ErasureReceipt.profilesDeleted",
    } <= fields


@pytest.mark.parametrize(
    ("original", "renamed", "problem"),
    [
        ("matchedOn: [Identity!]!", "matchedOn2: [Identity!]!", "Resolution.matchedOn2: missing"),
        ("consistencyToken: String!", "consistencyToken2: String!", "UpsertResult.consistencyToken2: missing"),
        ("value: String! }", "value2: String! }", "input IdentityInput.value2: missing"),
        ("NOT_FOUND  AMBIGUOUS", "NOT_FOUND  AMBIGUOUS2", "enum ResolutionStatus: value AMBIGUOUS2 missing"),
        ("reason: String): Customer!", "reason2: String): Customer!", "Mutation.mergeProfiles(reason2:): missing"),
        ("attributes: JSON!", "attributes: JSON2!", "scalar JSON2: missing"),
    ],
)
def test_a_name_the_schema_lacks_is_reported(original: str, renamed: str, problem: str) -> None:
    """The check itself: a contract naming something the schema lacks is reported by name."""
    text = contract_text()
    assert original in text

    problems = contract_problems(parse(text.replace(original, renamed, 1)), build_schema()._schema)

    assert problem in problems


def test_a_schema_as_strict_or_more_lenient_than_the_contract_keeps_it() -> None:
    text = contract_text()
    contract_nullable_output = text.replace("type Identity { key: String!", "type Identity { key: String", 1)
    contract_required_input = text.replace("consistencyToken: String)", "consistencyToken: String!)", 1)

    assert contract_problems(parse(contract_nullable_output), build_schema()._schema) == []
    assert contract_problems(parse(contract_required_input), build_schema()._schema) == []


def test_a_different_type_is_reported() -> None:
    listed = contract_text().replace("status: ResolutionStatus!", "status: [ResolutionStatus!]!", 1)

    assert contract_problems(parse(listed), build_schema()._schema) == [
        "Resolution.status: ResolutionStatus! is not readable as [ResolutionStatus!]!"
    ]


def test_type_fit_rules() -> None:
    """Outputs may be stricter than the contract (never null where it allows null); inputs may be more lenient."""
    required, optional_string = GraphQLNonNull(GraphQLString), GraphQLString

    assert output_fits(parse_type("String"), required)
    assert not output_fits(parse_type("String!"), optional_string)
    assert input_fits(parse_type("String!"), optional_string)
    assert not input_fits(parse_type("String"), required)
    assert not input_fits(parse_type("[String!]"), optional_string)
    assert not output_fits(parse_type("Int!"), required)


def test_the_contract_copy_matches_shared_api_md() -> None:
    if not API_MD.exists():
        pytest.skip(f"{API_MD} is not beside this repository")

    assert api_md_block(API_MD.read_text(encoding="utf-8")) == contract_text(), (
        f"shared/API.md's GraphQL section changed: copy it into {CONTRACT_COPY.relative_to(REPO_ROOT)} "
        "(below the header comment) and make the schema keep it"
    )
