"""Every English council with children's services, and populations split by their real sizes."""

from __future__ import annotations

import collections
import re

import numpy as np
import pytest

from synthetic_data.councils import COUNCILS, DEMO_COUNCILS, council_by_code
from synthetic_data.population import PopulationConfig, _council_sizes, generate_population

# The demo councils in their order: positions seed draws, so moving one changes its population.
DEMO_CODES = (
    "E08000035",  # Leeds
    "E08000003",  # Manchester
    "E10000016",  # Kent
    "E08000025",  # Birmingham
    "E06000023",  # Bristol, City of
    "E09000007",  # Camden
    "E08000012",  # Liverpool
    "E08000032",  # Bradford
    "E08000021",  # Newcastle upon Tyne
    "E09000012",  # Hackney
    "E06000018",  # Nottingham
    "E06000016",  # Leicester
    "E10000012",  # Essex
    "E10000017",  # Lancashire
    "E08000036",  # Wakefield
    "E10000020",  # Norfolk
    "E10000008",  # Devon
    "E10000030",  # Surrey
    "E10000014",  # Hampshire
    "E06000052",  # Cornwall
)
# DfE LA numbers by kind: inner London 201-213, outer London 301-320, metropolitan 330-394,
# Isles of Scilly 420, the rest 800-943.
LA_NUMBER_RANGES = {
    "E09": (range(201, 214), range(301, 321)),
    "E08": (range(330, 395),),
    "E06": (range(420, 421), range(800, 944)),
    "E10": (range(800, 944),),
}


def test_every_upper_tier_council_is_listed_once():
    # 152 until March 2023; Cumbria's split into Cumberland and Westmorland and Furness made 153.
    assert len(COUNCILS) == 153
    kinds = collections.Counter(c.gss_code[:3] for c in COUNCILS)
    assert kinds == {"E06": 63, "E08": 36, "E09": 33, "E10": 21}
    for field in ("gss_code", "name", "dfe_la_number", "id_prefix"):
        values = [getattr(c, field) for c in COUNCILS]
        assert len(set(values)) == len(values), field


@pytest.mark.parametrize("council", COUNCILS, ids=lambda c: c.gss_code)
def test_council_codes_numbers_and_sizes_are_well_formed(council):
    assert re.fullmatch(r"E(06|08|09|10)\d{6}", council.gss_code)
    ranges = LA_NUMBER_RANGES[council.gss_code[:3]]
    assert any(council.dfe_la_number in r for r in ranges), council.name
    assert re.fullmatch(r"[A-Z]{3}", council.id_prefix)
    assert council.children_approx > 0
    assert council.postcode_districts and council.postcode_areas


def test_demo_councils_keep_their_codes_and_places():
    assert tuple(c.gss_code for c in COUNCILS[:20]) == DEMO_CODES
    assert COUNCILS[:20] == DEMO_COUNCILS
    assert council_by_code("E08000035").dfe_la_number == 383
    assert council_by_code("E06000065").name == "North Yorkshire"


def test_sizes_add_up_to_about_englands_children():
    total = sum(c.children_approx for c in COUNCILS)
    assert 11_000_000 < total < 13_000_000
    largest = max(COUNCILS, key=lambda c: c.children_approx)
    smallest = min(COUNCILS, key=lambda c: c.children_approx)
    assert (largest.name, smallest.name) == ("Kent", "Isles of Scilly")


def test_default_split_is_equal_between_the_demo_councils():
    config = PopulationConfig()
    assert config.sizes == "equal"
    assert _council_sizes(config).tolist() == [1000, 1000, 1000]


@pytest.mark.parametrize("children", [0, 7, 12_345, 12_000_000])
def test_when_sizes_real_then_children_split_in_proportion(children):
    config = PopulationConfig(children=children, councils=len(COUNCILS), sizes="real")
    sizes = _council_sizes(config)
    assert sizes.sum() == children and (sizes >= 0).all()
    weights = np.array([c.children_approx for c in COUNCILS], dtype=np.float64)
    exact = children * weights / weights.sum()
    assert (np.abs(sizes - exact) < 1).all()  # largest remainder: each within one child


def test_when_sizes_real_then_generated_councils_follow_them():
    config = PopulationConfig(children=6000, councils=6, sizes="real", mover_rate=0)
    batches = list(generate_population(config))
    children = [b.truth["true_child_id"].nunique() for b in batches]
    assert children == _council_sizes(config).tolist()
    assert children[2] > children[0] > children[5]  # Kent > Leeds > Camden


def test_when_sizes_unknown_then_error_names_the_choices():
    with pytest.raises(ValueError, match="sizes must be one of equal, real"):
        PopulationConfig(sizes="census")
