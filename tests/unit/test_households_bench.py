"""The measures of bench/households.py: pairwise and B-cubed precision and recall, and the generator's truth."""

from __future__ import annotations

import pytest

from bench.households import generate, lookups, partition_quality


def test_a_partition_equal_to_the_truth_is_perfect() -> None:
    assigned = {"a": "c1", "b": "c1", "c": "c2"}
    assert partition_quality(assigned, {"a": 1, "b": 1, "c": 2}) == (1.0, 1.0, 1.0, 1.0)


def test_a_customer_mixing_two_people_loses_precision_not_recall() -> None:
    # a, b are person 1; c is person 2; all three in one customer.
    pp, pr, bp, br = partition_quality({"a": "c", "b": "c", "c": "c"}, {"a": 1, "b": 1, "c": 2})
    assert pp == pytest.approx(1 / 3) and pr == 1.0
    assert bp == pytest.approx((2 / 3 + 2 / 3 + 1 / 3) / 3) and br == 1.0


def test_one_person_split_in_two_customers_loses_recall_not_precision() -> None:
    pp, pr, bp, br = partition_quality({"a": "c1", "b": "c2"}, {"a": 1, "b": 1})
    assert (pp, pr, bp) == (1.0, 0.0, 1.0)
    assert br == pytest.approx(0.5)


def test_the_generator_is_deterministic_and_knows_every_records_person() -> None:
    records, truth = generate(20, 10, seed=3)
    again, _ = generate(20, 10, seed=3)
    assert records == again
    assert {(r["source"], r["source_id"]) for r in records} == set(truth.person_of)
    households = [p for p in truth.people if p.landline is not None or p.family_email is not None]
    assert len(truth.people) > 40 and households
    asked = lookups(truth, 50, seed=3)
    assert len(asked) == 50 and all(person in {p.id for p in truth.people} for person, _, _ in asked)
