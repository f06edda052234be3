"""The policy file is validated on load and reports every error at once."""

import pytest
import yaml

from transforms.policy import PolicyError, load_policy, parse_policy


def test_packaged_policy_loads_with_sensitive_services(policy):
    assert {"CAMHS", "SH", "SM"} <= policy.sensitive_codes
    assert "year_of_birth" in policy.field_names
    assert all(len(f.reason) >= 10 for f in policy.fields)


def test_every_error_is_reported_at_once():
    doc = {
        "version": 2,
        "fields": {
            "full_name": {
                "source": "given_name",
                "coarsen": "none",
                "shielded": "drop",
                "reason": "nice to have it",
            },
            "area": {"source": "postcode", "coarsen": "postcode_unit", "shielded": "maybe"},
            "notes": {
                "source": "nonexistent",
                "coarsen": "none",
                "shielded": "drop",
                "reason": "x",
            },
        },
        "services": {"sh": {"name": "Sexual health", "sensitive": "yes"}},
    }
    with pytest.raises(PolicyError) as info:
        parse_policy(doc)
    text = str(info.value)
    for expected in (
        "version: must be 1",
        "given_name is identifying",
        "postcode_unit",
        "fields.area: missing ['reason']",
        "fields.area.shielded",
        "'nonexistent' is not a column",
        "fields.notes.reason",
        "services.sh.sensitive",
        "services.sh: codes are upper-case",
    ):
        assert expected in text
    assert text.startswith("policy has 9 error(s)")


def test_policy_file_on_disk(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "fields": {}, "services": {}}))
    with pytest.raises(PolicyError, match="fields: must be a non-empty mapping"):
        load_policy(path)
