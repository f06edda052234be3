"""docs/extract-contract.md and transforms/contract.py describe the same contract."""

import json
import re
from pathlib import Path

from transforms.contract import CHILDREN_COLUMNS, CHILDREN_REQUIRED_VALUES, OPTOUT_COLUMNS, Manifest

DOC = (Path(__file__).parents[1] / "docs" / "extract-contract.md").read_text()


def test_children_columns_in_doc_match_code_in_order_and_requiredness():
    rows = re.findall(r"^\| `(\w+)` \| (yes|no) \|", DOC, flags=re.M)
    assert [name for name, _ in rows] == list(CHILDREN_COLUMNS)
    assert {name for name, req in rows if req == "yes"} == set(CHILDREN_REQUIRED_VALUES)


def test_manifest_example_in_doc_has_exactly_the_manifest_fields():
    example = re.search(r"```json\n(.*?)```", DOC, flags=re.S).group(1)
    assert set(json.loads(example)) == set(Manifest.__dataclass_fields__)


def test_optout_columns_in_doc():
    assert f"Columns `{','.join(OPTOUT_COLUMNS)}`" in DOC
