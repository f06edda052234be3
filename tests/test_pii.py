"""PII phase: known answers per entity type, redaction, the index guard, config errors, offline."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import hypothesis
import pandas as pd
import pytest
import yaml
from hypothesis import strategies as st
from presidio_analyzer import RecognizerResult

from transforms import pii
from transforms.identifiers import nhs_check_digit, upn_check_letter

ROOT = Path(__file__).resolve().parents[1]
ENTITY_TYPES = set(pii.ENTITY_PATTERNS)


def _found(text: str) -> list[tuple[str, str]]:
    """(entity type, matched text) pairs the notes analysis reports for `text`."""
    [results] = pii.analyze_texts(pii.build_analyzer(), [text])
    return sorted((r.entity_type, text[r.start : r.end]) for r in results)


def _types(text: str) -> set[str]:
    return {entity for entity, _ in _found(text)}


# --- known answers -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("NHS number 943 476 5919 confirmed", "UK_NHS", "943 476 5919"),
        ("nhs:9434765919.", "UK_NHS", "9434765919"),
        ("ref 943-476-5919", "UK_NHS", "943-476-5919"),
        ("number 94 34 76 59 19 given", "UK_NHS", "94 34 76 59 19"),
        ("UPN B801200005001 from school", "UK_UPN", "B801200005001"),
        (
            f"temporary UPN {upn_check_letter('80120000500A')}80120000500A",
            "UK_UPN",
            f"{upn_check_letter('80120000500A')}80120000500A",
        ),
        ("now lives at LS6 2AB with nan", "UK_POSTCODE", "LS6 2AB"),
        ("moved to SW1A 1AA", "UK_POSTCODE", "SW1A 1AA"),
        ("postcode M11AE", "UK_POSTCODE", "M11AE"),
        ("new address ls6 2ab", "UK_POSTCODE", "ls6 2ab"),
        ("Mum called on 07700 900123 about school.", "PHONE_NUMBER", "07700 900123"),
        ("mob +44 7700 900123", "PHONE_NUMBER", "+44 7700 900123"),
        ("tel +44 (0)113 496 0000", "PHONE_NUMBER", "+44 (0)113 496 0000"),
        ("home (0113) 496 0000", "PHONE_NUMBER", "(0113) 496 0000"),
        ("office 020 7946 0000", "PHONE_NUMBER", "020 7946 0000"),
        ("helpline 0300 123 4567", "PHONE_NUMBER", "0300 123 4567"),
        ("email sarah.jones@example.co.uk today", "EMAIL_ADDRESS", "sarah.jones@example.co.uk"),
        ("NI number AB 12 34 56 C", "UK_NINO", "AB 12 34 56 C"),
        ("nino AB123456C", "UK_NINO", "AB123456C"),
        ("Child born 3 March 2015 in Leeds", "DATE_OF_BIRTH", "3 March 2015"),
        ("DOB 03/03/2015", "DATE_OF_BIRTH", "03/03/2015"),
        ("D.O.B.: 2015-03-03", "DATE_OF_BIRTH", "2015-03-03"),
        ("born in Leeds on the 3rd of March 2015", "DATE_OF_BIRTH", "3rd of March 2015"),
        ("seen 03/03/2015 (DOB) today", "DATE_OF_BIRTH", "03/03/2015"),
        ("baby born May 2015", "DATE_OF_BIRTH", "May 2015"),
        (
            "previously lived at 26 Faulkner Meadows, LS13 7HH",
            "STREET_ADDRESS",
            "26 Faulkner Meadows",
        ),
        ("staying at Flat 4, 61 Birch Hill.", "STREET_ADDRESS", "Flat 4, 61 Birch Hill"),
        ("moved to 120 O'Brien Row", "STREET_ADDRESS", "120 O'Brien Row"),
        ("address 12a St John's Road", "STREET_ADDRESS", "12a St John's Road"),
        ("Oliver Smith attended", "PERSON", "Oliver Smith"),
        ("Attended review. Mum Sarah Jones called.", "PERSON", "Sarah Jones"),
        ("Spoke to Mrs Patel at home", "PERSON", "Patel"),
        ("Grace attended with her brother", "PERSON", "Grace"),
        ("SMITH, Sarah attended", "PERSON", "SMITH, Sarah"),
        ("spoke to Jones by phone", "PERSON", "Jones"),
    ],
)
def test_when_entity_present_then_found_with_its_exact_span(text, entity, value):
    assert (entity, value) in _found(text)


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("ref 9434765918 on file", "UK_NHS"),  # mod 11 fails
        ("ref 1234567890 on file", "UK_NHS"),  # check digit would be 10: no valid number
        ("area LS6 only", "UK_POSTCODE"),  # a district is not a postcode
        ("sector LS6 2 only", "UK_POSTCODE"),
        ("QX1 1AA", "UK_POSTCODE"),  # Q never starts a postcode
        ("LS6 2CI", "UK_POSTCODE"),  # C and I never in the inward code
        ("UPN B801200005002", "UK_UPN"),  # wrong check letter
        ("school URN 107890", "PHONE_NUMBER"),
        ("council E08000035", "PHONE_NUMBER"),
        ("call 07700 9001", "PHONE_NUMBER"),  # too short for any UK number
        ("NI QQ 12 34 56 C", "UK_NINO"),  # QQ is the HMRC specimen prefix, never issued
        ("Review booked for 12/04/2024 at school", "DATE_OF_BIRTH"),
        ("DOB 03/03/2015. Seen on 12/04/2024.", "UK_NHS"),
        ("Will attend. May review. Early Help plan agreed. Foster carer visited.", "PERSON"),
        ("Summer term report; Amber rating; family are Christian", "PERSON"),
        ("lives at 12 Acacia", "STREET_ADDRESS"),  # no street type
        ("had 2 review meetings on the green", "STREET_ADDRESS"),
        ("Jones", "PERSON"),  # a lone family name needs a context word
        ("sarah jones called", "PERSON"),  # lower case: a documented recall limit
    ],
)
def test_when_lookalike_then_not_reported(text, entity):
    assert entity not in _types(text)


def test_when_dob_then_later_dates_in_other_sentences_stay():
    found = _found("DOB 03/03/2015. Seen on 12/04/2024.")
    assert found == [("DATE_OF_BIRTH", "03/03/2015")]


def test_when_title_then_title_kept_outside_redaction():
    _scan, redacted = pii.scan_notes(pd.Series(["Met Mrs Jones and Dr. Sarah Khan."]))
    assert redacted.iloc[0] == "Met Mrs <PERSON> and Dr. <PERSON>."


def test_when_random_valid_nhs_numbers_then_all_found():
    rng = random.Random(11)
    for _ in range(200):
        nine = "".join(str(rng.randint(0, 9)) for _ in range(9))
        check = nhs_check_digit(nine)
        if check is None:
            continue
        assert "UK_NHS" in _types(f"NHS {nine}{check} noted"), "a valid NHS number was missed"
        assert "UK_NHS" not in _types(f"NHS {nine}{(check + 1) % 10} noted")


def test_when_email_then_suffix_validated_from_bundled_snapshot():
    [results] = pii.analyze_texts(pii.build_analyzer(), ["mail a.b@example.co.uk"])
    assert [(r.entity_type, r.score) for r in results] == [("EMAIL_ADDRESS", 1.0)]


# --- redaction and scan counts -------------------------------------------------------------------
NOTES = [
    "Attended review. Mum Sarah Jones called on 07700 900123 about school.",
    "NHS 943 476 5919, UPN B801200005001, lives at LS6 2AB. Email s.jones@example.co.uk",
    "Child born 3 March 2015. NI AB 12 34 56 C. Review 12/04/2024.",
    "Attended review.",
    "Attended review. Mum Sarah Jones called on 07700 900123 about school.",
    "",
    None,
    "Plan agreed at core group.",
]


def test_when_scanned_then_every_detected_value_is_gone():
    notes = pd.Series(NOTES, index=range(10, 10 + len(NOTES)))
    _scan, redacted = pii.scan_notes(notes)
    assert list(redacted.index) == list(notes.index)
    analyzer = pii.build_analyzer()
    for original, out in zip(notes, redacted, strict=True):
        if pd.isna(original):
            assert pd.isna(out)
            continue
        [results] = pii.analyze_texts(analyzer, [original])
        for r in results:
            assert original[r.start : r.end] not in out, f"{r.entity_type} left in the note"
            assert f"<{r.entity_type}>" in out


def test_when_scanned_then_counts_weight_repeated_notes_and_hold_no_values():
    scan, redacted = pii.scan_notes(pd.Series(NOTES))
    assert scan.rows_scanned == len(NOTES)
    assert scan.rows_with_pii == 4
    assert scan.entity_counts == {
        "DATE_OF_BIRTH": 1,
        "EMAIL_ADDRESS": 1,
        "PERSON": 2,
        "PHONE_NUMBER": 2,
        "UK_NHS": 1,
        "UK_NINO": 1,
        "UK_POSTCODE": 1,
        "UK_UPN": 1,
    }
    assert set(scan.entity_counts) <= ENTITY_TYPES
    assert redacted.iloc[0] == (
        "Attended review. Mum <PERSON> called on <PHONE_NUMBER> about school."
    )
    assert redacted.iloc[2] == "Child born <DATE_OF_BIRTH>. NI <UK_NINO>. Review 12/04/2024."
    assert redacted.iloc[3] == "Attended review."
    assert redacted.iloc[5] == ""


def test_when_no_notes_then_empty_scan():
    scan, redacted = pii.scan_notes(pd.Series([], dtype="string"))
    assert scan == pii.PiiScan(0, 0, {})
    assert redacted.empty


def test_when_scanned_then_logs_hold_no_value(caplog):
    with caplog.at_level(logging.DEBUG):
        pii.scan_notes(pd.Series(["Mum Sarah Jones called on 07700 900123."]))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Sarah" not in logged and "900123" not in logged


# --- the index guard -----------------------------------------------------------------------------
def _clean_index_frame(n: int, seed: int) -> pd.DataFrame:
    """Minimised values as `transforms.minimise` makes them, from a seeded generator."""
    rng = random.Random(seed)
    letters = "ABCDEFGHJKLMNPRSTUWY"
    districts = ["LS6", "SW1A", "EC1A", "M1", "B33", "CR2", "DN55", "W1A", "BD7", "NE1", "G2"]
    return pd.DataFrame(
        {
            "child_pseudonym": [
                hashlib.sha256(f"{seed}-{i}".encode()).hexdigest() for i in range(n)
            ],
            "pseudonym_kind": [rng.choice(["nhs", "local"]) for _ in range(n)],
            "key_version": ["v1"] * n,
            "council_code": [
                f"E{rng.choice(['06', '08', '09', '10'])}{rng.randint(0, 999999):06d}"
                for _ in range(n)
            ],
            "shielded": [rng.random() < 0.01 for _ in range(n)],
            "year_of_birth": pd.array([rng.randint(2000, 2025) for _ in range(n)], dtype="Int64"),
            "sex": [rng.choice("MFXU") for _ in range(n)],
            "postcode_district": [rng.choice(districts) for _ in range(n)],
            "school_urn": [str(rng.randint(100000, 999999)) for _ in range(n)],
            "gp_practice_code": [
                f"{rng.choice(letters)}{rng.randint(0, 99999):05d}" for _ in range(n)
            ],
            "services": [
                ";".join(
                    sorted(
                        rng.sample(
                            ["CSC", "EH", "CP", "LAC", "SEN", "HV", "SN", "YJ", "EWS"],
                            rng.randint(0, 3),
                        )
                    )
                )
                or None
                for _ in range(n)
            ],
            "other_service_involved": pd.array(
                [rng.random() < 0.1 for _ in range(n)], dtype="boolean"
            ),
            "care_leaver": pd.array([rng.random() < 0.05 for _ in range(n)], dtype="boolean"),
        }
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_when_values_are_minimised_then_guard_passes(seed):
    frame = _clean_index_frame(400, seed)
    assert pii.guard_index_values(frame, list(frame.columns)) == []


@pytest.mark.parametrize(
    ("column", "value", "entity"),
    [
        ("postcode_district", "LS6 2AB", "UK_POSTCODE"),
        ("postcode_district", "ls62ab", "UK_POSTCODE"),
        ("sex", "Oliver Smith", "PERSON"),
        ("sex", "Oliver", "PERSON"),
        ("gp_practice_code", "Smith", "PERSON"),
        ("school_urn", "9434765919", "UK_NHS"),
        ("school_urn", "943 476 5919", "UK_NHS"),
        ("services", "07700 900123", "PHONE_NUMBER"),
        ("services", "carer@example.com", "EMAIL_ADDRESS"),
        ("council_code", "AB123456C", "UK_NINO"),
        ("pseudonym_kind", "B801200005001", "UK_UPN"),
        ("year_of_birth", "2015-03-03", "DATE_OF_BIRTH"),
        ("year_of_birth", "03/03/2015", "DATE_OF_BIRTH"),
        ("postcode_district", "12 Acacia Avenue", "STREET_ADDRESS"),
    ],
)
def test_when_pii_planted_then_guard_names_column_entity_and_rows(column, value, entity):
    frame = _clean_index_frame(50, 9).astype({column: "string"})
    frame.loc[[3, 17, 40], column] = value
    findings = pii.guard_index_values(frame, list(frame.columns))
    assert findings == [pii.GuardFinding(column, entity, 3)]


def test_when_guard_finds_pii_then_logs_name_column_and_type_never_value(caplog):
    frame = pd.DataFrame({"postcode_district": ["LS6", "LS6 2AB"], "sex": ["F", "Oliver Smith"]})
    with caplog.at_level(logging.DEBUG):
        findings = pii.guard_index_values(frame, ["postcode_district", "sex"])
    assert {(f.column, f.entity_type, f.rows) for f in findings} == {
        ("postcode_district", "UK_POSTCODE", 1),
        ("sex", "PERSON", 1),
    }
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "postcode_district" in logged and "UK_POSTCODE" in logged
    assert "2AB" not in logged and "Oliver" not in logged


def test_when_guard_column_missing_then_error_names_it():
    with pytest.raises(KeyError, match="nope"):
        pii.guard_index_values(pd.DataFrame({"sex": ["F"]}), ["sex", "nope"])


def test_when_synthetic_population_then_pipeline_guard_passes_and_notes_recall_is_full(key, policy):
    # The project's own generator: its minimised output must pass the guard, and every item of
    # personal data it plants in notes (recorded with its span) must be found, with no finding
    # outside those spans.
    from synthetic_data.population import PopulationConfig, generate_population
    from transforms.minimise import minimise
    from transforms.pseudonymise import assign_pseudonyms

    [batch] = generate_population(PopulationConfig(children=2500, councils=1, seed=21))
    code = batch.council.gss_code
    staged = minimise(assign_pseudonyms(batch.extract, code, key), policy, code)
    assert pii.guard_index_values(staged, list(staged.columns)) == []

    notes = batch.extract["notes"]
    found = pii.analyze_texts(pii.build_analyzer(), list(notes))
    planted = caught = 0
    for spans, results in zip(batch.truth["notes_pii_spans"], found, strict=True):
        spans = json.loads(spans) if spans else []
        for span in spans:
            planted += 1
            caught += any(r.start < span["end"] and span["start"] < r.end for r in results)
        for r in results:
            assert any(r.start < s["end"] and s["start"] < r.end for s in spans), (
                f"false positive {r.entity_type}"
            )
    assert planted > 100
    assert caught == planted


# --- configuration -------------------------------------------------------------------------------
def _packaged_document() -> dict:
    return yaml.safe_load((ROOT / "transforms/config/pii.yaml").read_text("utf-8"))


def test_when_packaged_config_loaded_then_every_entity_enabled():
    settings = pii.load_pii_settings()
    assert set(settings.recognizers) == ENTITY_TYPES
    assert all(r.enabled for r in settings.recognizers.values())


def test_when_config_broken_then_every_error_reported_at_once():
    doc = _packaged_document()
    doc["score_threshold"] = 2
    doc["recognizers"]["UK_NHS"]["scores"] = {"ten_digit": 0.5}
    doc["recognizers"]["US_SSN"] = {"scores": {}}
    doc["names"]["scores"].pop("family_name")
    with pytest.raises(pii.PiiConfigError) as error:
        pii.parse_pii_settings(doc)
    message = str(error.value)
    assert "4 error(s)" in message
    for fragment in ("score_threshold", "recognizers.UK_NHS.scores", "US_SSN", "names.scores"):
        assert fragment in message


def test_when_locale_unknown_then_error_says_which():
    doc = _packaged_document()
    doc["names"]["sources"] = ["en_GB", "xx_XX"]
    with pytest.raises(pii.PiiConfigError, match="xx_XX"):
        pii.create_analyzer(pii.parse_pii_settings(doc))


def test_when_built_then_only_configured_recognizers_and_no_us_defaults():
    analyzer = pii.build_analyzer()
    assert analyzer is pii.build_analyzer()  # built once per process
    entities = set(analyzer.get_supported_entities("en"))
    assert entities == ENTITY_TYPES
    assert not any(e.startswith(("US_", "AU_", "IN_", "SG_")) for e in entities)
    assert isinstance(analyzer.nlp_engine, pii.NameListNlpEngine)


def test_when_entity_disabled_then_not_reported():
    doc = _packaged_document()
    doc["recognizers"]["PHONE_NUMBER"]["enabled"] = False
    analyzer = pii.create_analyzer(pii.parse_pii_settings(doc))
    [results] = pii.analyze_texts(analyzer, ["call 07700 900123"])
    assert results == []


def test_when_entity_threshold_lowered_then_weaker_matches_reported():
    doc = _packaged_document()
    assert "UK_POSTCODE" not in _types("ref ls6 2ab")  # lower case, no context: 0.4 < 0.5
    doc["recognizers"]["UK_POSTCODE"]["score_threshold"] = 0.35
    analyzer = pii.create_analyzer(pii.parse_pii_settings(doc))
    [results] = pii.analyze_texts(analyzer, ["ref ls6 2ab"])
    assert [r.entity_type for r in results] == ["UK_POSTCODE"]


# --- offline -------------------------------------------------------------------------------------
def test_when_network_blocked_then_build_and_email_analysis_still_work(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    pii.build_analyzer.cache_clear()
    pii.offline_tld_extractor.cache_clear()
    try:
        [results] = pii.analyze_texts(pii.build_analyzer(), ["mail carer@example.org.uk"])
    finally:
        pii.build_analyzer.cache_clear()
    assert [(r.entity_type, r.score) for r in results] == [("EMAIL_ADDRESS", 1.0)]


def test_when_fresh_process_then_import_build_and_analysis_touch_no_network_or_model(tmp_path):
    # A new interpreter, so module imports are covered too; spacy.load and the model download
    # are made to fail, and HOME is empty so no cached suffix list can hide a fetch.
    script = textwrap.dedent("""
        import socket, spacy, spacy.cli
        def refuse(*args, **kwargs):
            raise SystemExit("network or model access attempted")
        socket.socket.connect = socket.socket.connect_ex = refuse
        socket.create_connection = socket.getaddrinfo = refuse
        spacy.load = spacy.cli.download = refuse
        import pandas as pd
        from transforms import pii
        scan, out = pii.scan_notes(pd.Series(["Email a.b@example.co.uk or call 07700 900123"]))
        assert scan.entity_counts == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}, scan
        print("offline ok")
    """)
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "offline ok" in done.stdout
    assert not any(tmp_path.iterdir()), "something was cached under HOME"


# --- many realistic notes -------------------------------------------------------------------------
@pytest.mark.slow
def test_when_5000_realistic_notes_then_every_one_with_personal_data_is_found():
    rng = random.Random(5)
    plain = [
        "Attended review.",
        "Plan agreed at core group.",
        "No concerns raised by school.",
        "Home visit completed; child seen alone.",
        "Did not attend appointment.",
    ]
    notes = []
    for i in range(5000):
        if rng.random() < 0.5:
            notes.append(rng.choice(plain))
        else:
            notes.append(
                f"Attended review {i}. Mum Sarah Jones called on 07700 900{i % 1000:03d} "
                f"about school; lives at LS6 {i % 10}AB."
            )
    # Speed is measured by `make bench` (bench/pii.py), never asserted in a test.
    scan, _ = pii.scan_notes(pd.Series(notes))
    assert scan.rows_with_pii > 2000


@pytest.fixture(scope="module")
def synthetic_notes() -> pd.DataFrame:
    from synthetic_data.population import PopulationConfig, generate_population

    config = PopulationConfig(children=6000, councils=1, seed=8, notes_rate=1.0)
    [batch] = generate_population(config)
    return pd.DataFrame({"notes": batch.extract["notes"], "spans": batch.truth["notes_pii_spans"]})


def test_when_fast_path_then_same_redaction_as_full_presidio_analysis(synthetic_notes):
    # Presidio's full analysis (context step included) for every text, at the notes threshold:
    # the fast path must redact exactly the same spans as types.
    settings = pii.load_pii_settings()
    assert all(r.score_threshold is None for r in settings.recognizers.values())
    texts = [*dict.fromkeys(synthetic_notes["notes"]), *(n for n in NOTES if isinstance(n, str))]
    analyzer = pii.build_analyzer()
    fast = pii.analyze_texts(analyzer, texts)
    full = pii.analyze_texts(analyzer, texts, settings.score_threshold, full=True)
    for text, a, b in zip(texts, fast, full, strict=True):
        assert pii.redact_text(text, a) == pii.redact_text(text, b)


def test_when_synthetic_labelled_notes_then_every_planted_span_is_found_and_redacted(
    synthetic_notes,
):
    notes = synthetic_notes["notes"]
    # Speed is measured by `make bench` (bench/pii.py), against Presidio in the same run.
    scan, redacted = pii.scan_notes(notes)
    planted = sum(len(json.loads(s)) for s in synthetic_notes["spans"])
    assert scan.rows_with_pii == int(synthetic_notes["spans"].ne("[]").sum())
    assert sum(scan.entity_counts.values()) >= planted
    for text, spans, out in zip(notes, synthetic_notes["spans"], redacted, strict=True):
        for span in json.loads(spans):
            assert text[span["start"] : span["end"]] not in out, span["type"]


# --- fast-path pieces against what they stand in for ----------------------------------------------
# Notes built to be awkward: overlapping findings, same-type findings with only spaces between
# them, titles with dots, names in capitals, dates in every form, names next to numbers.
AWKWARD_NOTES = [
    "Mrs . Sarah Jones and Dr. Khan met Mr Patel, SMITH, Sarah and Oliver James Smith.",
    "Sarah  Jones called; Jones Sarah; Sarah Sarah Jones; Mr Mrs Jones; Dr. . Smith.",
    "Grace Grace Oliver Smith Jones, Patel , Ruby.",
    "Tel 07700 900123 07700 900124 and 943 476 5919 943 476 5919",
    "Mum Sarah Jones 07700 900123 Sarah Jones",
    "DOB 03/03/2015 (DOB) born 3rd of March 2015, birthday: March 3, 2015; 2015-03-03 dob",
    "born May 2015. Seen 12/04/2024, 1.2.15 and 31-12-99 at 61 Birch Hill LS6 2AB.",
    "Flat 4, 61 Birch Hill LS6 2AB 12a St John's Road ls6 2ab a.b@example.co.uk",
    "NI AB 12 34 56 C, AB123456C, UPN B801200005001 B801200005001.",
]


def test_when_fast_path_then_same_redaction_as_full_presidio_analysis_on_awkward_notes():
    settings = pii.load_pii_settings()
    analyzer = pii.build_analyzer()
    fast = pii.analyze_texts(analyzer, AWKWARD_NOTES)
    full = pii.analyze_texts(analyzer, AWKWARD_NOTES, settings.score_threshold, full=True)
    for text, a, b in zip(AWKWARD_NOTES, fast, full, strict=True):
        assert pii.redact_text(text, a) == pii.redact_text(text, b)


def _ruler_names(nlp_engine: pii.NameListNlpEngine, doc) -> list[tuple[int, int, float]]:
    entities = nlp_engine._get_entities(doc)
    scores = nlp_engine._get_scores_for_entities(doc)
    return [(e.start_char, e.end_char, s) for e, s in zip(entities, scores, strict=True)]


def test_when_name_matcher_then_same_names_as_the_entity_ruler():
    # The fast path's names (NameMatcher on the tokens of each note's name region) stand in for
    # spaCy's entity ruler on the whole note: on random sequences of given names, family names
    # (also in capitals), titles, dots, commas, ambiguous words, numbers, e-mail addresses and
    # other words, joined by assorted whitespace, both must report the same spans and scores.
    analyzer = pii.build_analyzer()
    engine = analyzer.nlp_engine
    assert engine.name_matcher is not None
    assert engine.names_capitalised
    names = engine.names
    rng = random.Random(3)
    pools = [
        sorted(names.given)[:: max(1, len(names.given) // 40)],
        sorted(names.family)[:: max(1, len(names.family) // 40)],
        [n.upper() for n in sorted(names.family)[:: max(1, len(names.family) // 10)]],
        list(engine.titles),
        [".", ",", "'s", "-", "(", ")", "Sarah's", "O'Brien,", "(Jones)", "Smith-Jones"],
        ["Grace", "Jones", "Smith", "Sarah", "Master", "May", "Will", "Hope", "Young", "Patel"],
        ["called", "mum", "and", "the", "review", "12", "LS6", "07700 900123", "a.b@example.com"],
        ["Élodie", "ÅSA", "naïve", "café", "Cannot", "don't", "Dont", "x\u00a0y", "\n"],
    ]
    texts = []
    for _ in range(4000):
        words = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 9))]
        gaps = [" ", " ", "", "  ", ", ", "\n", "\t", " \n "]
        texts.append(rng.choice(["", " ", "\n"]) + "".join(w + rng.choice(gaps) for w in words))
    ruler_docs = engine.nlp["en"].pipe(texts)
    compared = 0
    for text, fast, full in zip(texts, engine.find_names(texts), ruler_docs, strict=True):
        assert fast == _ruler_names(engine, full), text
        compared += bool(full.ents)
    assert compared > 1000  # most sequences hold a name


def test_when_name_region_then_it_spans_the_chunks_with_capitals():
    engine = pii.build_analyzer().nlp_engine
    text = "call 07700 900123 re: Mum (Sarah Jones), email s.j@example.com"
    start, end = engine.name_region(text)
    assert text[start:end] == "Mum (Sarah Jones),"
    assert engine.name_region("no capitals here 123") == (0, 0)
    assert engine.name_region("Ådne\tsmith") == (0, 4)


def test_when_title_is_also_a_given_name_then_name_matcher_not_used():
    lists = pii.NamePatterns(
        given=("Sarah", "Master"),
        family=("Jones",),
        family_any_case=("JONES", "Jones"),
        given_alone=("Sarah",),
        family_alone=("Jones",),
        titles=("Mr", "Master"),
    )
    assert not pii.NameMatcher.exact_for(lists)
    assert pii.NameMatcher.exact_for(dataclasses.replace(lists, given=("Sarah",)))


def _presidio_redactions(texts, found):
    return [pii._redact_with_presidio(t, r) for t, r in zip(texts, found, strict=True) if r]


def test_when_redacted_then_same_as_presidio_anonymizer(synthetic_notes):
    # redact_text replaces plain findings itself; it must give the AnonymizerEngine's output.
    texts = [*dict.fromkeys(synthetic_notes["notes"]), *AWKWARD_NOTES]
    settings = pii.load_pii_settings()
    analyzer = pii.build_analyzer()
    for threshold in (None, settings.score_threshold, settings.guard_score_threshold):
        found = pii.analyze_texts(analyzer, texts, threshold)
        ours = [pii.redact_text(t, r) for t, r in zip(texts, found, strict=True) if r]
        assert ours == _presidio_redactions(texts, found)


def test_when_findings_overlap_or_touch_then_redaction_still_matches_presidio():
    text = "Sarah Jones 07700 900123 x"
    results = [
        [("PERSON", 0, 5, 0.6), ("PERSON", 6, 11, 0.4)],  # one type, only a space between
        [("PERSON", 0, 5, 0.6), ("PERSON", 5, 11, 0.4)],  # touching
        [("PERSON", 0, 11, 0.85), ("UK_NHS", 6, 17, 0.9)],  # overlapping, higher score later
        [("PERSON", 0, 11, 0.85), ("PERSON", 0, 5, 0.6)],  # one inside another
        [("PHONE_NUMBER", 12, 24, 0.6), ("UK_NHS", 12, 24, 1.0)],  # the same span twice
        [("PERSON", 0, 5, 0.6), ("PHONE_NUMBER", 12, 24, 0.6)],  # plain
    ]
    for case in results:
        found = [RecognizerResult(t, s, e, score) for t, s, e, score in case]
        assert pii.redact_text(text, found) == pii._redact_with_presidio(text, found), case


@hypothesis.settings(max_examples=300, deadline=None, database=None)
@hypothesis.given(
    st.one_of(
        st.from_regex(re.compile(pii._DATE, re.IGNORECASE), fullmatch=True),
        st.from_regex(re.compile(pii._MONTH_YEAR, re.IGNORECASE), fullmatch=True),
    )
)
def test_when_text_holds_a_date_then_date_screen_lets_it_through(date):
    # The date screen decides whether the DOB recogniser runs at all: every date either of its
    # patterns can match must pass it.
    assert pii.DATE_SCREEN.search(f"seen {date} today")


_UPN_BODY = pii.UPN_REGEX.removeprefix(r"(?<!\w)").removesuffix(r"(?!\w)")


@hypothesis.settings(max_examples=300, deadline=None, database=None)
@hypothesis.given(st.from_regex(re.compile(_UPN_BODY, re.IGNORECASE), fullmatch=True))
def test_when_text_holds_a_upn_shape_then_upn_screen_lets_it_through(upn):
    assert "(" not in _UPN_BODY  # only the lookarounds were stripped
    assert pii.UPN_SCREEN.search(f"UPN {upn} noted")


@hypothesis.settings(max_examples=300, deadline=None, database=None)
@hypothesis.given(st.from_regex(re.compile(pii._POSTCODE_BODY, re.IGNORECASE), fullmatch=True))
def test_when_text_holds_a_postcode_then_postcode_screen_lets_it_through(postcode):
    assert pii.POSTCODE_SCREEN.search(f"moved to {postcode} today")


def test_the_guards_fast_path_finds_what_presidio_finds():
    """At the guard's threshold, the screens and the fast path change no finding.

    The values: an index's (codes, districts, years), local child ids (a name-list word glued
    to digits), and personal data of every kind, alone, in pairs and in capitals. Compared as
    redaction (what the guards act on) with Presidio analysing each value in full.
    """
    frame = _clean_index_frame(300, 5)
    values = sorted({str(v) for c in frame.columns for v in frame[c].dropna()})
    values += [
        "LS6 2AB", "ls62ab", "Oliver Smith", "Smith", "9434765919", "943 476 5919",
        "07700 900123", "+44 7700 900123", "carer@example.com", "AB123456C", "B801200005001",
        "2015-03-03", "03/03/2015", "12 Acacia Avenue", "dob 3.3.15", "Flat 4, 61 Birch Hill",
        "MAN00115207", "LDS-000123", "SMITH123", "Grace2015", "OLIVER SMITH 07700 900123",
        "Sarah Jones 9434765919", "Mr Patel", "Jones, Sarah", "K9 Unit", "Sarah",
    ]  # fmt: skip
    analyzer = pii.build_analyzer()
    threshold = pii.load_pii_settings().guard_score_threshold
    ours = pii.analyze_texts(analyzer, values, threshold)
    theirs = [analyzer.analyze(text=v, language="en", score_threshold=threshold) for v in values]
    for value, a, b in zip(values, ours, theirs, strict=True):
        assert pii.redact_text(value, a) == pii.redact_text(value, b), value
    assert sum(bool(r) for r in theirs) >= 20  # the planted values are found either way
