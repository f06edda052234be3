"""Column guard: misplaced personal data is reported, blanked or refused, never staged."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
import yaml

from synthetic_data.population import PopulationConfig, generate_population
from synthetic_data.writer import write_extract
from transforms import column_guard, pii
from transforms.ingest import ExtractRef
from transforms.pipeline import SyncPaths, process_extract

CREATED = "2026-11-25T06:00:00Z"


@pytest.fixture(scope="module")
def batches():
    return list(generate_population(PopulationConfig(children=3000, councils=3, seed=41)))


@pytest.fixture(scope="module")
def batch(batches):
    return batches[0]


def _plant(extract: pd.DataFrame, column: str, source: str, step: int = 25) -> pd.DataFrame:
    """Copy `source`'s non-blank values into `column` on every `step`-th such row."""
    planted = extract.copy()
    rows = extract.index[extract[source].str.strip().ne("")][::step]
    planted.loc[rows, column] = extract.loc[rows, source]
    return planted


def test_when_synthetic_extracts_are_clean_then_no_findings(batches):
    for b in batches:
        result = column_guard.guard_columns(b.extract)
        assert result.findings == [], f"false alarm in {b.council.gss_code}"
        assert result.refuse_reason is None
        assert result.frame is b.extract


@pytest.mark.parametrize(
    ("column", "source", "entity", "action"),
    [
        ("school_urn", "nhs_number", "UK_NHS", "blank"),
        ("services", "carer_name", "PERSON", "blank"),
        ("services", "given_name", "PERSON", "blank"),
        ("gp_practice_code", "carer_phone", "PHONE_NUMBER", "blank"),
        ("sex", "postcode", "UK_POSTCODE", "refuse"),
        ("local_child_id", "nhs_number", "UK_NHS", "refuse"),
        ("postcode", "carer_name", "PERSON", "refuse"),
        ("carer_phone", "nhs_number", "UK_NHS", "report"),
        ("upn", "postcode", "UK_POSTCODE", "report"),
    ],
)
def test_when_pii_planted_in_wrong_column_then_found_with_share_and_action(
    batch, column, source, entity, action
):
    planted = _plant(batch.extract, column, source)
    expected_share = (planted[column] != batch.extract[column]).mean()
    result = column_guard.guard_columns(planted)
    [finding] = [f for f in result.findings if f.column == column]
    assert (finding.entity_type, finding.action) == (entity, action)
    assert finding.share == pytest.approx(expected_share, abs=0.01)
    assert (result.refuse_reason is not None) == (action == "refuse")
    if action == "blank":
        assert result.frame[column].eq("").all()
        assert batch.extract[column].ne("").any(), "the input frame is never changed"
    if action == "refuse":
        assert column in result.refuse_reason and entity in result.refuse_reason


def test_when_report_and_logs_then_no_value_appears(batch, caplog):
    planted = _plant(_plant(batch.extract, "school_urn", "nhs_number"), "services", "carer_name")
    with caplog.at_level(logging.WARNING):
        result = column_guard.guard_columns(planted)
    text = json.dumps(result.to_report()) + caplog.text
    assert set(result.to_report()) == {"school_urn", "services"}
    changed = planted["services"] != batch.extract["services"]
    for value in [*planted.loc[changed, "services"], *batch.extract["nhs_number"]]:
        if value:
            assert value not in text


def test_when_planted_file_processed_then_planted_values_never_staged(tmp_path, batch, key, policy):
    planted = _plant(_plant(batch.extract, "school_urn", "nhs_number"), "services", "carer_name")
    code = batch.council.gss_code
    manifest = write_extract(
        planted, tmp_path / "landing" / code, council_code=code, file_kind="children",
        created_at=CREATED,
    )  # fmt: skip
    ref = ExtractRef(code, manifest.file_name, manifest.file_name + ".manifest.json")
    report = process_extract(SyncPaths(tmp_path), ref, key, policy, "r1")
    assert report.status == "staged", report.reason
    assert set(report.column_findings) == {"school_urn", "services"}
    assert report.column_findings["school_urn"]["action"] == "blank"
    assert "UK_NHS" in report.column_findings["school_urn"]["entities"]
    assert "PERSON" in report.column_findings["services"]["entities"]
    staged = pd.read_parquet(report.staged_path)
    assert staged["school_urn"].isna().all() and staged["services"].isna().all()
    staged_text = staged.astype("string").to_csv()
    for value in batch.extract["nhs_number"]:
        if value:
            assert value not in staged_text
    for value in batch.extract["carer_name"]:
        for word in value.split():
            assert f";{word}" not in staged_text and f",{word}" not in staged_text
    assert json.loads(json.dumps(report.to_dict()))["column_findings"] == report.column_findings


def test_when_validation_refuses_too_then_its_reason_comes_first(tmp_path, batch, key, policy):
    planted = _plant(batch.extract, "sex", "postcode", step=10)  # 10%: over the 5% limit
    code = batch.council.gss_code
    manifest = write_extract(
        planted, tmp_path / "landing" / code, council_code=code, file_kind="children",
        created_at=CREATED,
    )  # fmt: skip
    ref = ExtractRef(code, manifest.file_name, manifest.file_name + ".manifest.json")
    report = process_extract(SyncPaths(tmp_path), ref, key, policy, "r1")
    assert report.status == "refused" and "sex_code" in report.reason
    assert "UK_POSTCODE" in report.column_findings["sex"]["entities"]


def test_when_key_column_holds_pii_then_file_refused_and_nothing_staged(
    tmp_path, batch, key, policy
):
    # 1% of rows: under validation's 5% limit, so the file reaches the column guard's verdict.
    planted = _plant(batch.extract, "sex", "postcode", step=100)
    code = batch.council.gss_code
    manifest = write_extract(
        planted, tmp_path / "landing" / code, council_code=code, file_kind="children",
        created_at=CREATED,
    )  # fmt: skip
    ref = ExtractRef(code, manifest.file_name, manifest.file_name + ".manifest.json")
    report = process_extract(SyncPaths(tmp_path), ref, key, policy, "r1")
    assert report.status == "refused" and report.staged_path is None
    assert "UK_POSTCODE in column sex" in report.reason
    assert report.column_findings["sex"]["action"] == "refuse"
    assert not (tmp_path / "staging").exists() or not any((tmp_path / "staging").rglob("*.parquet"))


def test_when_packaged_config_then_every_contract_column_but_notes_has_a_rule():
    settings = column_guard.load_column_guard_settings()
    assert set(settings.columns) == set(column_guard.PROFILED_COLUMNS)
    assert settings.columns["school_urn"].on_finding == "blank"
    assert settings.columns["nhs_number"].on_finding == "refuse"


def test_packaged_pii_config_is_parsed_once_for_settings_and_column_guard(monkeypatch):
    """A worker forked after the analyzer was built reads the column rules without parsing."""
    from importlib import resources

    text = resources.files("transforms").joinpath("config/pii.yaml").read_text("utf-8")
    pii._packaged_document.cache_clear()
    assert pii._packaged_document() == yaml.safe_load(text)  # libyaml reads it the same
    pii.load_pii_settings()

    def parse(*_args, **_kwargs):
        raise AssertionError("config/pii.yaml parsed again")

    monkeypatch.setattr(yaml, "load", parse)
    monkeypatch.setattr(yaml, "safe_load", parse)
    column_guard.load_column_guard_settings.cache_clear()
    try:
        settings = column_guard.load_column_guard_settings()
    finally:
        column_guard.load_column_guard_settings.cache_clear()
    assert settings.columns["nhs_number"].on_finding == "refuse"


def test_when_config_broken_then_every_error_reported_at_once():
    raw = yaml.safe_load(
        """
        sample_values: 0
        columns:
          sex: {expects: [NOT_A_TYPE], on_finding: blank}
          school_urn: {expects: [], on_finding: shred}
          bogus: {expects: [], on_finding: report}
        """
    )
    with pytest.raises(pii.PiiConfigError) as error:
        column_guard.parse_column_guard_settings(raw)
    message = str(error.value)
    for part in ("sample_values", "missing", "bogus", "NOT_A_TYPE", "shred", "cannot be blanked"):
        assert part in message
