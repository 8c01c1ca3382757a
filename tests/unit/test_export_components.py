"""The union-find behind `idgraph export` (app/db/export.py): customers as whole components, each the oldest
profile by created_at then id, whatever order the joining groups arrive in."""

from __future__ import annotations

import itertools

from app.db.export import Components


def customers(groups: list[list[list[object]]]) -> Components:
    """Each group as the holders of one shared identity, each holder joined to it in turn."""
    components = Components()
    for n, members in enumerate(groups):
        for profile_id, created_ns in members:
            assert isinstance(profile_id, str) and (created_ns is None or isinstance(created_ns, int))
            components.join(profile_id, created_ns, [f"identity-{n}"])
    return components


def test_a_profile_never_joined_is_its_own_customer() -> None:
    components = customers([[["a", 5], ["b", 3]]])
    assert components.customer_of("z") == "z"
    assert len(components) == 3  # two profiles and their identity


def test_a_merge_target_read_later_brings_its_age() -> None:
    components = Components()
    components.join("b", 20, ["a"])  # b was merged into a, which comes later in id order... or earlier
    assert components.customer_of("b") == "b"  # a's age is not known yet
    components.join("a", 30, [])
    assert components.customer_of("a") == components.customer_of("b") == "b"
    components.join("c", 10, ["a"])
    assert {components.customer_of(p) for p in "abc"} == {"c"}


def test_the_oldest_of_the_whole_component_in_any_order_of_the_groups() -> None:
    groups: list[list[list[object]]] = [
        [["p3", 30], ["p4", 40]],
        [["p4", 40], ["p5", 50], ["p6", 60]],
        [["p9", 10], ["p3", 30]],  # the oldest, joined last
        [["x1", 1], ["x2", 2]],  # another customer
    ]
    for order in itertools.permutations(groups):
        components = customers(list(order))
        assert {components.customer_of(p) for p in ["p3", "p4", "p5", "p6", "p9"]} == {"p9"}
        assert components.customer_of("x2") == "x1"


def test_ties_on_created_at_go_to_the_smallest_id_and_a_missing_created_at_is_the_youngest() -> None:
    assert customers([[["b", 7], ["a", 7]]]).customer_of("b") == "a"
    assert customers([[["a", None], ["b", 99]]]).customer_of("a") == "b"
    assert customers([[["b", None], ["a", None]]]).customer_of("b") == "a"


def test_a_long_chain_joined_pair_by_pair() -> None:
    n = 5000
    components = customers([[[f"p{k:05d}", n - k], [f"p{k + 1:05d}", n - k - 1]] for k in range(n)])
    assert {components.customer_of(f"p{k:05d}") for k in range(n + 1)} == {f"p{n:05d}"}
