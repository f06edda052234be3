"""PII phase: find and redact personal data in free-text notes, and guard index-bound values.

Presidio does the work, configured by `config/pii.yaml` and fully offline:

- **No NER model.** No pretrained spaCy pipeline (en_core_web_lg/sm) is available from the
  registries this project trusts, and nothing may download at run time. PERSON therefore comes
  from name lists, Presidio's documented no-NER approach (deny lists), inside a spaCy pipeline
  because Presidio's NoOpNlpEngine has no tokens for context words. `NameListNlpEngine` subclasses
  Presidio's `SpacyNlpEngine` so that `load()` builds `spacy.blank("en")` plus an `entity_ruler`
  fed with the first and last names shipped in Faker's person providers (en_GB first, the locales
  listed in the YAML after it). Matching is case-sensitive on capitalised tokens; a given name and
  family name together, or a title and a name, score high; a lone given name scores enough to be
  redacted; a lone family name only counts next to a context word ("mum", "spoke", ...). Nothing
  ever calls `spacy.load` on a model name or `spacy.cli.download`.
  It cannot catch names on none of the lists, names in lower case or wholly in capitals ("SARAH"),
  or names that are also common words standing alone ("Hope", "May", "Young").
- **No public-suffix fetch.** Presidio's EmailRecognizer asks `tldextract`, whose module-level
  extractor downloads the public suffix list on first use. `OfflineEmailRecognizer` overrides
  Presidio's `validate_result` hook to use `tldextract.TLDExtract(suffix_list_urls=(),
  cache_dir=None)`, i.e. the snapshot bundled in the tldextract package.
- **UK recognisers.** UK_NHS (Modulus 11), UK_UPN (check letter), UK_POSTCODE (Royal Mail letter
  rules), PHONE_NUMBER (UK forms), EMAIL_ADDRESS, UK_NINO, DATE_OF_BIRTH (a date near a birth
  word), STREET_ADDRESS (a numbered street) and PERSON. Presidio's predefined US-biased
  recognisers are never loaded.

**Speed** (notes; `python -m bench.pii` measures it): each distinct note is analysed once; a
note with no digit, no "@" and no word on the name lists is skipped; and a fast path does the
rest, with no context step. It takes names from `NameMatcher`, the entity ruler's patterns as
set lookups on token hashes, on spaCy's tokens (in batches) of each note's name region, from its
first to its last whitespace-separated chunk holding a capital (the same spans as the ruler on
the whole note; a test compares the two). It runs each of Presidio's pattern recognisers only on
the notes its screen passes: the recogniser's own compiled regexes, searched over all notes at
once, or for DATE_OF_BIRTH, UK_UPN and UK_POSTCODE a cheaper regex every match contains (a year
or numeric date; a letter and eleven digits; a digit and two letters). Presidio's full analysis,
with the whole pipeline and the context step, runs only on a note where that could change the
redaction: a match below its threshold that a context word might lift (a lone family name), or
matches that overlap. Context only raises scores and redaction drops a match inside another, so
both paths redact the same spans as the same types (a test checks it on the synthetic notes).
Redaction replaces findings that neither overlap nor are of one type with only spaces between
them directly, as Presidio's AnonymizerEngine would; the engine resolves the others. The
guard's threshold always takes the full path.

Findings are reported as counts by entity type; no value is ever logged or put in a message.
"""

from __future__ import annotations

import copy
import functools
import importlib
import itertools
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd
import spacy
import tldextract
import yaml
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    LemmaContextAwareEnhancer,
    Pattern,
    PatternRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
from presidio_analyzer.pattern_recognizer import REGEX_TIMEOUT_SECONDS
from presidio_analyzer.predefined_recognizers import (
    EmailRecognizer,
    NhsRecognizer,
    SpacyRecognizer,
    UkNinoRecognizer,
)
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import ConflictResolutionStrategy, OperatorConfig
from spacy.attrs import ORTH
from spacy.language import Language
from spacy.tokens import Doc, Span

from transforms.identifiers import POSTCODE_RE, nhs_check_digit, upn_check_letter

logger = logging.getLogger(__name__)

# Pattern names each recogniser has; `config/pii.yaml` gives each a score.
ENTITY_PATTERNS: dict[str, tuple[str, ...]] = {
    "UK_NHS": ("ten_digits",),
    "UK_UPN": ("upn",),
    "UK_POSTCODE": ("upper_case", "any_case"),
    "PHONE_NUMBER": ("uk_number",),
    "EMAIL_ADDRESS": ("email",),
    "UK_NINO": ("nino",),
    "DATE_OF_BIRTH": ("in_context", "bare_full_date"),
    "STREET_ADDRESS": ("numbered_street",),
    "PERSON": (),  # scored under `names`
}
NAME_SCORE_KEYS = ("full_name", "title_and_name", "given_name", "family_name")

# Entity-ruler labels, all reported as PERSON with the score `names.scores` gives them.
LABEL_SCORE_KEYS = {
    "NAME_FULL": "full_name",
    "NAME_TITLED": "title_and_name",
    "NAME_GIVEN": "given_name",
    "NAME_FAMILY": "family_name",
}
LEMMA_COMPONENT = "registry_sync_lower_lemma"

# A note with no digit, no "@" and no word on the name lists cannot hold any entity we look for.
_DIGIT_OR_AT = re.compile(r"[\d@]")
_DIGIT = re.compile(r"\d")
_WORDS = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
# A capital letter or any non-ASCII character (a superset of the capitals), and whitespace as
# spaCy's tokenizer splits at it (`\s` is exactly `str.isspace`).
_CAPITAL = re.compile(r"[A-Z\x80-\U0010ffff]")
_SPACE = re.compile(r"\s")

# --- patterns -----------------------------------------------------------------------------------
_SEP = r"[ \t-]?"
NHS_REGEX = r"(?<![\w-])\d(?:" + _SEP + r"\d){9}(?!\w)"
UPN_REGEX = r"(?<!\w)[A-HJ-NP-RT-Z]\d{11}[0-9A-HJ-NP-RT-Z](?!\w)"
# The anchored POSTCODE_RE of transforms.identifiers, unanchored, with the space optional.
_POSTCODE_BODY = POSTCODE_RE.pattern.removeprefix("^").removesuffix("$").replace(" ", r"[ \t]?")
POSTCODE_UPPER_REGEX = r"(?<!\w)" + _POSTCODE_BODY + r"(?!\w)"
POSTCODE_ANY_CASE_REGEX = r"(?i:" + POSTCODE_UPPER_REGEX + r")"
# 0, (0, +44, +44 (0) or 0044, then a national number of 9 or 10 digits: 07 mobiles, 01/02
# geographic, 03 non-geographic, and 08/09 service numbers (written into notes as contacts too).
PHONE_REGEX = (
    r"(?<![\w+])(?:(?:\+44|0044)[ \t-]?(?:\(0\)[ \t-]?)?|\(?0)[1-9]"
    r"(?:[ \t-]?\)?[ \t-]?\d){8,9}(?!\w)"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_YEAR = r"(?:19|20)\d{2}"
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE_FORMS = (
    rf"{_DAY}[/.-](?:0?[1-9]|1[0-2])[/.-](?:{_YEAR}|\d{{2}})",  # 03/03/2015, 3.3.15
    rf"{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])",  # 2015-03-03
    rf"{_DAY}(?:st|nd|rd|th)?(?:\s+of)?\s+{_MONTH}\.?,?\s+{_YEAR}",  # 3rd of March 2015
    rf"{_MONTH}\.?\s+{_DAY}(?:st|nd|rd|th)?,?\s+{_YEAR}",  # March 3, 2015
)
_DATE = r"(?:" + "|".join(_DATE_FORMS) + r")"
_MONTH_YEAR = rf"{_MONTH}\.?,?\s+{_YEAR}"
# A birth word, then at most four words (no digits, no sentence end) before the date:
# "born 3 March 2015", "DOB: 03/03/2015", "born in Leeds on 3rd of March 2015", "born May 2015".
# The birth word is in the pattern, not a Presidio context word, because Presidio's context
# window crosses sentence ends and would take every date after a "DOB" as a date of birth.
_BIRTH_WORD = r"(?:born|dob|d\.o\.b\.?|date\s+of\s+birth|birth\s*date|birthday|b'?day)"
_GAP = r"[\s:,()\-–]+"
DOB_IN_CONTEXT_REGEX = (
    rf"(?<=(?<!\w){_BIRTH_WORD}(?:{_GAP}[^\W\d_]+){{0,4}}{_GAP})"
    rf"(?:{_DATE}|{_MONTH_YEAR})(?![\w/])"
    rf"|(?<![\w/.-]){_DATE}(?=\s*\(?\s*(?:dob|d\.o\.b|date\s+of\s+birth)(?!\w))"
)
FULL_DATE_REGEX = rf"(?<![\w/.-]){_DATE}(?![\w/])"  # any full date: the guard's evidence
# Every date above holds a year ("19" or "20" and two digits) or a numeric day/month/year
# ("3.3.15", "2015-03-03"), so a text with neither cannot match either date pattern. Presidio's
# `regex` module may know digits newer than Python's Unicode tables, so a "digit" here is any
# character but an ASCII non-digit.
_ANY_DIGIT = r"[^\x00-/:-\x7f]"
DATE_SCREEN = re.compile(
    rf"(?:19|20){_ANY_DIGIT}{{2}}|{_ANY_DIGIT}[/.-]{_ANY_DIGIT}{{1,2}}[/.-]{_ANY_DIGIT}"
)
# Letters too: a pattern matching case-insensitively may take non-ASCII letters that fold to
# ASCII ones, so a "letter" is any character but an ASCII non-letter.
_ANY_LETTER = r"[^\x00-@\[-`{-\x7f]"
UPN_SCREEN = re.compile(_ANY_LETTER + _ANY_DIGIT + "{11}")  # UPN_REGEX: letter, 11 digits, one more
# Every postcode's inward code (and "GIR 0AA") is a digit and two letters.
POSTCODE_SCREEN = re.compile("[0-9]" + _ANY_LETTER + "{2}")
# "Flat 4, 61 Birch Hill", "12a St John's Road": a house number, one to three capitalised words,
# then a street type from the YAML (matched case-sensitively).
_STREET_WORD = r"[A-Z][A-Za-z]*(?:['’][A-Za-z]+)?(?:-[A-Z][A-Za-z]+)?\.?"
_FLAT = r"(?:(?:Flat|Apartment|Apt|Unit)\.?\s+\d{1,4}[A-Za-z]?,?\s+)?"


def street_address_regex(street_types: Sequence[str]) -> str:
    """Return the numbered-street pattern for the given street types ("Road", "Mews", ...)."""
    types = "|".join(re.escape(t) for t in sorted(street_types, key=len, reverse=True))
    return (
        rf"(?<!\w){_FLAT}\d{{1,4}}[A-Za-z]?,?\s+(?:{_STREET_WORD}\s+){{1,3}}"
        rf"(?:{types})(?!\w)"
    )


_CASE_SENSITIVE = re.DOTALL | re.MULTILINE
_IGNORE_CASE = re.DOTALL | re.MULTILINE | re.IGNORECASE


# --- settings -----------------------------------------------------------------------------------
class PiiConfigError(ValueError):
    """The PII configuration is invalid; the message lists every problem found."""


@dataclass(frozen=True)
class RecognizerSettings:
    """One entity type: whether it is looked for, its pattern scores and context words."""

    entity: str
    enabled: bool
    scores: Mapping[str, float]
    context: tuple[str, ...]
    score_threshold: float | None
    street_types: tuple[str, ...] = ()  # STREET_ADDRESS only


@dataclass(frozen=True)
class NameSettings:
    """Where PERSON's name lists come from and how a match of each kind scores."""

    sources: tuple[str, ...]
    extra_given_names: tuple[str, ...]
    extra_family_names: tuple[str, ...]
    titles: tuple[str, ...]
    ambiguous_words: tuple[str, ...]
    scores: Mapping[str, float]
    context: tuple[str, ...]


@dataclass(frozen=True)
class ContextSettings:
    """Presidio's LemmaContextAwareEnhancer parameters."""

    similarity_factor: float
    min_score_with_context: float
    prefix_words: int
    suffix_words: int


@dataclass(frozen=True)
class PiiSettings:
    """The validated `config/pii.yaml`."""

    language: str
    score_threshold: float
    guard_score_threshold: float
    context: ContextSettings
    names: NameSettings
    recognizers: Mapping[str, RecognizerSettings]


def _is_score(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def _words(value: object, where: str, errors: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
        errors.append(f"{where}: must be a list of non-empty strings")
        return ()
    return tuple(w.strip() for w in value)


def _score(document: Mapping, key: str, where: str, errors: list[str]) -> float:
    value = document.get(key)
    if not _is_score(value):
        errors.append(f"{where}{key}: must be a number from 0 to 1 (got {value!r})")
        return 0.0
    return float(value)


def _scores(raw: Mapping, keys: Sequence[str], where: str, errors: list[str]) -> dict[str, float]:
    # A missing key is reported once by the caller; only present values are checked here.
    return {k: _score(raw, k, where, errors) if k in raw else 0.0 for k in keys}


def _parse_context(raw: object, errors: list[str]) -> ContextSettings:
    keys = {"similarity_factor", "min_score_with_context", "prefix_words", "suffix_words"}
    if not isinstance(raw, dict):
        errors.append(f"context: must be a mapping with {sorted(keys)}")
        raw = {}
    elif set(raw) != keys:
        errors.append(f"context: keys must be exactly {sorted(keys)}")
    counts = {}
    for key in ("prefix_words", "suffix_words"):
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 20:
            errors.append(f"context.{key}: must be a whole number from 0 to 20")
            value = 0
        counts[key] = value
    return ContextSettings(
        similarity_factor=_score(raw, "similarity_factor", "context.", errors),
        min_score_with_context=_score(raw, "min_score_with_context", "context.", errors),
        prefix_words=counts["prefix_words"],
        suffix_words=counts["suffix_words"],
    )


def _parse_names(raw: object, errors: list[str]) -> NameSettings:
    keys = {
        "sources",
        "extra_given_names",
        "extra_family_names",
        "titles",
        "ambiguous_words",
        "scores",
        "context",
    }
    if not isinstance(raw, dict):
        errors.append(f"names: must be a mapping with {sorted(keys)}")
        raw = {}
    unknown = set(raw) - keys
    if unknown:
        errors.append(f"names: unknown keys {sorted(unknown)}; allowed {sorted(keys)}")
    sources = _words(raw.get("sources"), "names.sources", errors)
    if not sources:
        errors.append("names.sources: list at least one Faker locale, e.g. en_GB")
    for locale in sources:
        if not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", locale):
            errors.append(f"names.sources: {locale!r} is not a locale name like en_GB")
    raw_scores = raw.get("scores")
    if not isinstance(raw_scores, dict) or set(raw_scores) != set(NAME_SCORE_KEYS):
        errors.append(f"names.scores: must give exactly {list(NAME_SCORE_KEYS)}")
        raw_scores = raw_scores if isinstance(raw_scores, dict) else {}
    scores = _scores(raw_scores, NAME_SCORE_KEYS, "names.scores.", errors)
    return NameSettings(
        sources=sources,
        extra_given_names=_words(raw.get("extra_given_names"), "names.extra_given_names", errors),
        extra_family_names=_words(
            raw.get("extra_family_names"), "names.extra_family_names", errors
        ),
        titles=_words(raw.get("titles"), "names.titles", errors),
        ambiguous_words=_words(raw.get("ambiguous_words"), "names.ambiguous_words", errors),
        scores=scores,
        context=tuple(w.lower() for w in _words(raw.get("context"), "names.context", errors)),
    )


def _parse_recognizer(entity: str, raw: object, errors: list[str]) -> RecognizerSettings:
    where = f"recognizers.{entity}"
    keys = {"enabled", "scores", "context", "score_threshold"}
    if entity == "STREET_ADDRESS":
        keys.add("street_types")
    if not isinstance(raw, dict):
        errors.append(f"{where}: must be a mapping with some of {sorted(keys)}")
        raw = {}
    unknown = set(raw) - keys
    if unknown:
        errors.append(f"{where}: unknown keys {sorted(unknown)}; allowed {sorted(keys)}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        errors.append(f"{where}.enabled: must be true or false")
    expected = ENTITY_PATTERNS[entity]
    raw_scores = raw.get("scores", {})
    if entity == "PERSON" and ("scores" in raw or "context" in raw):
        errors.append(f"{where}: PERSON's scores and context words belong under `names`")
    elif not isinstance(raw_scores, dict) or set(raw_scores) != set(expected):
        errors.append(f"{where}.scores: must give a score for exactly {list(expected)}")
        raw_scores = raw_scores if isinstance(raw_scores, dict) else {}
    scores = _scores(raw_scores, expected, f"{where}.scores.", errors)
    threshold = raw.get("score_threshold")
    if threshold is not None and not _is_score(threshold):
        errors.append(f"{where}.score_threshold: must be a number from 0 to 1")
        threshold = None
    context = tuple(w.lower() for w in _words(raw.get("context"), f"{where}.context", errors))
    street_types = _words(raw.get("street_types"), f"{where}.street_types", errors)
    if entity == "STREET_ADDRESS" and not street_types:
        errors.append(f"{where}.street_types: list the street types, e.g. [Road, Street]")
    return RecognizerSettings(
        entity,
        enabled is True,
        scores,
        context,
        None if threshold is None else float(threshold),
        street_types,
    )


def parse_pii_settings(document: object) -> PiiSettings:
    """Validate a parsed `pii.yaml` document.

    Args:
        document: the YAML document as loaded by `yaml.safe_load`.

    Returns:
        The typed settings.

    Raises:
        PiiConfigError: listing every problem found, one per line, each saying what to fix.
    """
    errors: list[str] = []
    top = {
        "version",
        "language",
        "score_threshold",
        "guard_score_threshold",
        "context",
        "names",
        "recognizers",
        "column_guard",  # validated by transforms.column_guard
    }
    if not isinstance(document, dict):
        raise PiiConfigError(f"pii config: the file must be a mapping with {sorted(top)}")
    unknown = set(document) - top
    if unknown:
        errors.append(f"unknown top-level keys {sorted(unknown)}; allowed {sorted(top)}")
    if document.get("version") != 1:
        errors.append("version: must be 1")
    language = document.get("language")
    if language != "en":
        errors.append("language: only 'en' is supported (the name lists are English-locale)")
    score_threshold = _score(document, "score_threshold", "", errors)
    guard_threshold = _score(document, "guard_score_threshold", "", errors)
    context = _parse_context(document.get("context"), errors)
    names = _parse_names(document.get("names"), errors)
    raw_recognizers = document.get("recognizers")
    if not isinstance(raw_recognizers, dict):
        errors.append(
            f"recognizers: must be a mapping of entity type to settings, one of "
            f"{sorted(ENTITY_PATTERNS)}"
        )
        raw_recognizers = {}
    recognizers: dict[str, RecognizerSettings] = {}
    for entity, raw in raw_recognizers.items():
        if entity not in ENTITY_PATTERNS:
            errors.append(
                f"recognizers.{entity}: unknown entity type; known are {sorted(ENTITY_PATTERNS)}"
            )
            continue
        recognizers[entity] = _parse_recognizer(entity, raw, errors)
    if raw_recognizers and not any(r.enabled for r in recognizers.values()):
        errors.append("recognizers: enable at least one entity type")
    if errors:
        listed = "\n  ".join(errors)
        raise PiiConfigError(f"pii config has {len(errors)} error(s):\n  {listed}")
    return PiiSettings("en", score_threshold, guard_threshold, context, names, recognizers)


@functools.cache
def _packaged_document() -> dict:
    """Read the packaged `config/pii.yaml` once per process, as `yaml.safe_load` reads it.

    Both this module's settings and the column guard's section come from it: a worker forked
    after the analyzer was built parses nothing (`_read_yaml`: libyaml's parser, the same
    document in a seventh of the time of the pure-Python one).
    """
    return _read_yaml(resources.files("transforms").joinpath("config/pii.yaml").read_text("utf-8"))


def _read_yaml(text: str) -> object:
    """Parse YAML as `yaml.safe_load` does, with libyaml's parser when PyYAML has it."""
    if yaml.__with_libyaml__:
        return yaml.load(text, Loader=yaml.CSafeLoader)
    return yaml.safe_load(text)


def packaged_section(name: str) -> object:
    """Return a copy of one top-level section of the packaged `config/pii.yaml` (None if absent)."""
    return copy.deepcopy(_packaged_document().get(name))


@functools.cache
def _packaged_settings() -> PiiSettings:
    return parse_pii_settings(copy.deepcopy(_packaged_document()))


def load_pii_settings(path: Path | None = None) -> PiiSettings:
    """Load and validate the PII config (the packaged `config/pii.yaml` by default, cached)."""
    if path is None:
        return _packaged_settings()
    return parse_pii_settings(_read_yaml(Path(path).read_text("utf-8")))


# --- name lists and the offline NLP engine ------------------------------------------------------
@dataclass(frozen=True)
class NameLists:
    """Capitalised given and family names, and the words never taken as a name alone."""

    given: frozenset[str]
    family: frozenset[str]
    ambiguous: frozenset[str]  # lower-cased


def _provider_names(locale: str, attributes: Iterable[str]) -> set[str]:
    try:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    except ModuleNotFoundError as exc:
        raise PiiConfigError(f"names.sources: Faker has no person provider for {locale!r}") from exc
    names: set[str] = set()
    for attribute in attributes:
        names.update(getattr(provider, attribute, None) or ())  # tuples, or dicts of weights
    return names


def _is_name_token(name: str) -> bool:
    # One capitalised word (letters, maybe one inner apostrophe: O'Brien); the ruler matches
    # single tokens, and all-capital entries would match acronyms.
    return (
        len(name) >= 2
        and name[0].isupper()
        and not name.isupper()
        and bool(re.fullmatch(r"[^\W\d_]+(?:['’][^\W\d_]+)?", name))
    )


def load_name_lists(settings: NameSettings) -> NameLists:
    """Collect the name lists from Faker's person providers (shipped data, nothing fetched).

    Raises:
        PiiConfigError: when a listed locale has no Faker person provider.
    """
    from faker.providers.lorem.en_US import Provider as Lorem
    from spacy.lang.en.stop_words import STOP_WORDS

    given: set[str] = set(settings.extra_given_names)
    family: set[str] = set(settings.extra_family_names)
    for locale in settings.sources:
        given |= _provider_names(
            locale,
            ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary"),
        )
        family |= _provider_names(locale, ("last_names", "last_names_male", "last_names_female"))
    ambiguous = {w.lower() for w in settings.ambiguous_words}
    ambiguous |= {w.lower() for w in Lorem.word_list} | {w.lower() for w in STOP_WORDS}
    ambiguous |= {w.lower() for w in settings.titles}
    return NameLists(
        given=frozenset(n for n in given if _is_name_token(n)),
        family=frozenset(n for n in family if _is_name_token(n)),
        ambiguous=frozenset(ambiguous),
    )


@Language.component(LEMMA_COMPONENT)
def _lower_lemma(doc: Doc) -> Doc:
    """Set each lemma to the lower-cased text (Presidio's context words are compared to lemmas).

    A blank pipeline has no lemmatizer, so without this every lemma would be empty.
    """
    for token in doc:
        token.lemma_ = token.lower_
    return doc


@dataclass(frozen=True)
class NamePatterns:
    """The token texts each part of the name ruler's patterns matches (case-sensitive)."""

    given: tuple[str, ...]  # single-token given names
    family: tuple[str, ...]  # single-token family names
    family_any_case: tuple[str, ...]  # and the same in capitals ("SMITH, Sarah")
    given_alone: tuple[str, ...]  # a name alone: not an ambiguous word
    family_alone: tuple[str, ...]  # nor a given name
    titles: tuple[str, ...]


def name_patterns(names: NameLists, titles: Sequence[str], nlp: Language) -> NamePatterns:
    """Return the token lists of the name ruler, keeping names `nlp` makes a single token."""
    single = {n for n in names.given | names.family if len(nlp.tokenizer(n)) == 1}
    given = sorted(n for n in names.given if n in single)
    family = sorted(n for n in names.family if n in single)
    return NamePatterns(
        given=tuple(given),
        family=tuple(family),
        family_any_case=tuple(sorted(set(family) | {n.upper() for n in family})),
        given_alone=tuple(n for n in given if n.lower() not in names.ambiguous),
        family_alone=tuple(
            n for n in family if n not in names.given and n.lower() not in names.ambiguous
        ),
        titles=tuple(titles),
    )


def build_name_pipeline(names: NameLists, titles: Sequence[str]) -> Language:
    """Return `spacy.blank("en")` with an entity ruler that tags names from the lists.

    Labels: NAME_FULL (given [+ middle] + family, or "SMITH, Sarah"), NAME_TITLED ("Mrs Jones"),
    NAME_GIVEN and NAME_FAMILY (one unambiguous name alone). Case-sensitive: only capitalised
    tokens (and family names in capitals after a given name) match. `NameMatcher` matches the
    same patterns without spaCy's matcher.
    """
    nlp = spacy.blank("en")
    lists = name_patterns(names, titles, nlp)
    given = list(lists.given)
    family_any_case = list(lists.family_any_case)
    ruler = nlp.add_pipe("entity_ruler", config={"overwrite_ents": True, "validate": False})
    ruler.add_patterns(
        [
            {
                "label": "NAME_FULL",
                "pattern": [
                    {"ORTH": {"IN": given}},
                    {"ORTH": {"IN": given}, "OP": "?"},
                    {"ORTH": {"IN": family_any_case}},
                ],
            },
            {
                "label": "NAME_FULL",
                "pattern": [
                    {"ORTH": {"IN": family_any_case}},
                    {"ORTH": ","},
                    {"ORTH": {"IN": given}},
                ],
            },
            {
                "label": "NAME_TITLED",
                "pattern": [
                    {"ORTH": {"IN": list(lists.titles)}},
                    {"ORTH": ".", "OP": "?"},
                    {"ORTH": {"IN": given}, "OP": "?"},
                    {"ORTH": {"IN": sorted(set(lists.family) | set(lists.given))}},
                ],
            },
            {"label": "NAME_GIVEN", "pattern": [{"ORTH": {"IN": list(lists.given_alone)}}]},
            {"label": "NAME_FAMILY", "pattern": [{"ORTH": {"IN": list(lists.family_alone)}}]},
        ]
    )
    nlp.add_pipe(LEMMA_COMPONENT)
    return nlp


class NameMatcher:
    """The name ruler's patterns as set lookups on token hashes: the same entities, faster.

    spaCy's matcher calls a Python predicate for every token and every `IN` list; here each
    token's hash is looked up once per list. `match` enumerates every span each pattern of
    `build_name_pipeline` matches (each optional token both taken and skipped, as spaCy's
    matcher reports them) and keeps them as the entity ruler does: longest first, then leftmost,
    skipping a span whose first or last token an earlier one took. Where two patterns of
    different labels could match the same span (a title that is also a given name), that order
    is spaCy's set order, so `exact_for` is False and the ruler must be used instead.
    `tests/test_pii.py` compares both on random token sequences and on the synthetic notes.
    """

    def __init__(self, lists: NamePatterns, nlp: Language):
        def hashes(words: Iterable[str]) -> frozenset[int]:
            return frozenset(nlp.vocab.strings.add(w) for w in words)

        self.given = hashes(lists.given)
        self.family_any_case = hashes(lists.family_any_case)
        self.after_title = hashes(set(lists.family) | set(lists.given))
        self.given_alone = hashes(lists.given_alone)
        self.family_alone = hashes(lists.family_alone)
        self.titles = hashes(lists.titles)
        self.comma = nlp.vocab.strings.add(",")
        self.dot = nlp.vocab.strings.add(".")

    @staticmethod
    def exact_for(lists: NamePatterns) -> bool:
        """Return True when no span can match patterns of two labels.

        NAME_GIVEN and NAME_FAMILY never share a token (a family name alone is not a given
        name), and a span both NAME_FULL and NAME_TITLED would start with a title that is also a
        given name ("FAMILY , given" is never titled: "," is neither "." nor a name).
        """
        return not set(lists.titles) & set(lists.given)

    def match(self, doc: Doc) -> list[tuple[str, int, int]]:
        """Return the ruler's entities of `doc` as (label, start token, end token), by start."""
        orths = doc.to_array(ORTH).tolist()
        n = len(orths)
        given, family, after_title = self.given, self.family_any_case, self.after_title
        found: set[tuple[str, int, int]] = set()
        for i, orth in enumerate(orths):
            if orth in self.given_alone:
                found.add(("NAME_GIVEN", i, i + 1))
            if orth in self.family_alone:
                found.add(("NAME_FAMILY", i, i + 1))
            if orth in given:  # given [given] FAMILY
                if i + 1 < n and orths[i + 1] in family:
                    found.add(("NAME_FULL", i, i + 2))
                if i + 2 < n and orths[i + 1] in given and orths[i + 2] in family:
                    found.add(("NAME_FULL", i, i + 3))
            if (  # FAMILY , given
                orth in family
                and i + 2 < n
                and orths[i + 1] == self.comma
                and orths[i + 2] in given
            ):
                found.add(("NAME_FULL", i, i + 3))
            if orth in self.titles:  # title ["."] [given] name
                name_at = [i + 1]
                if i + 1 < n and orths[i + 1] == self.dot:
                    name_at.append(i + 2)
                for k in name_at:
                    if k < n and orths[k] in after_title:
                        found.add(("NAME_TITLED", i, k + 1))
                    if k + 1 < n and orths[k] in given and orths[k + 1] in after_title:
                        found.add(("NAME_TITLED", i, k + 2))
        taken: set[int] = set()
        kept = []
        for label, start, end in sorted(found, key=lambda m: (m[2] - m[1], -m[1]), reverse=True):
            if start not in taken and end - 1 not in taken:
                kept.append((label, start, end))
                taken.update(range(start, end))
        return sorted(kept, key=lambda m: m[1])


class NameListNlpEngine(SpacyNlpEngine):
    """Presidio's spaCy engine on a blank pipeline whose only entities are list-matched names.

    `load()` builds the pipeline with `build_name_pipeline` instead of `spacy.load(model_name)`,
    so no model is needed and none is ever downloaded.
    """

    engine_name = "name_list_spacy"

    def __init__(self, names: NameLists, settings: NameSettings, language: str = "en"):
        super().__init__(
            models=[{"lang_code": language, "model_name": "blank:name_lists"}],
            ner_model_configuration=NerModelConfiguration(
                model_to_presidio_entity_mapping=dict.fromkeys(LABEL_SCORE_KEYS, "PERSON"),
                default_score=settings.scores["full_name"],
            ),
        )
        self.names = names
        self.titles = tuple(settings.titles)
        self.label_scores = {label: settings.scores[key] for label, key in LABEL_SCORE_KEYS.items()}
        self.language = language
        # Every word that could be (part of) a name: a text with none of them needs no spaCy run.
        self.name_vocab = frozenset(
            names.given | names.family | {n.upper() for n in names.family} | set(self.titles)
        )
        self.name_matcher: NameMatcher | None = None  # set by `load()`
        self.names_capitalised = False  # set by `load()`

    def load(self) -> None:
        """Build the blank pipeline with the name ruler (no model load, no download).

        Also builds the `NameMatcher` the fast path uses instead of the ruler, when it is exact
        for these lists (`name_matcher` is None otherwise).
        """
        nlp = build_name_pipeline(self.names, self.titles)
        self.nlp = {self.language: nlp}
        lists = name_patterns(self.names, self.titles, nlp)
        self.name_matcher = NameMatcher(lists, nlp) if NameMatcher.exact_for(lists) else None
        # What `name_region` relies on: every name and title holds a capital.
        self.names_capitalised = all(
            _CAPITAL.search(word) for word in (*lists.given, *lists.family_any_case, *lists.titles)
        )

    def name_region(self, text: str) -> tuple[int, int]:
        """Return (start, end) of the part of `text` that holds every name the ruler could find.

        It runs from the start of the first whitespace-separated chunk holding a capital to the
        end of the last such chunk ("capital": A-Z or any non-ASCII character). spaCy's tokenizer
        splits a text at whitespace and tokenises each chunk on its own (a special case spanning
        chunks never applies), so that part tokenises exactly as it does inside the whole text;
        and every token a name pattern starts or ends with holds a capital (`load()` checks it),
        so every match lies inside. The rest of a note (numbers, e-mail addresses) need not be
        tokenised at all.
        """
        if not self.names_capitalised:
            return 0, len(text)
        first = _CAPITAL.search(text)
        if first is None:
            return 0, 0
        space_before = _SPACE.search(text[: first.start()][::-1])
        start = first.start() - space_before.start() if space_before else 0
        last = len(text) - 1 - _CAPITAL.search(text[::-1]).start()
        space_after = _SPACE.search(text, last)
        return start, space_after.start() if space_after else len(text)

    def find_names(
        self, texts: Sequence[str], batch_size: int = 256
    ) -> Iterator[list[tuple[int, int, float]]]:
        """Yield the names of each text as (start char, end char, score), no context applied.

        The same spans and scores as `_get_entities` and `_get_scores_for_entities` give after
        the whole pipeline (`tests/test_pii.py` compares them): from the `NameMatcher` on the
        tokens of each text's `name_region`, or without a matcher from the ruler (no lemmas).
        """
        nlp = self.nlp[self.language]
        if self.name_matcher is None:
            for doc in nlp.pipe(texts, batch_size=batch_size, disable=[LEMMA_COMPONENT]):
                entities = self._get_entities(doc)
                scores = self._get_scores_for_entities(doc)
                yield [(e.start_char, e.end_char, s) for e, s in zip(entities, scores, strict=True)]
            return
        regions = [self.name_region(text) for text in texts]
        parts = (text[start:end] for text, (start, end) in zip(texts, regions, strict=True))
        docs = nlp.pipe(parts, batch_size=batch_size, disable=nlp.pipe_names)  # tokens only
        title_or_dot = (*self.titles, ".")
        for (offset, _end), doc in zip(regions, docs, strict=True):
            found = []
            for label, start, end in self.name_matcher.match(doc):
                while start < end - 1 and doc[start].text in title_or_dot:
                    start += 1  # as `_get_entities`: "Mrs Jones" becomes "Mrs <PERSON>"
                span = doc[start:end]
                score = self.label_scores.get(label, 0.0)
                found.append((offset + span.start_char, offset + span.end_char, score))
            yield found

    def _get_entities(self, doc: Doc) -> list[Span]:
        # Keep the title out of the redaction: "Mrs Jones" becomes "Mrs <PERSON>".
        entities = []
        for ent in doc.ents:
            start = ent.start
            while start < ent.end - 1 and doc[start].text in (*self.titles, "."):
                start += 1
            entities.append(ent if start == ent.start else Span(doc, start, ent.end, ent.label_))
        return entities

    def _get_scores_for_entities(self, doc: Doc) -> list[float]:
        return [self.label_scores.get(ent.label_, 0.0) for ent in doc.ents]

    def may_hold_name(self, text: str) -> bool:
        """Return True when some word of `text` is on the name lists (cheap pre-screen)."""
        for word in _WORDS.findall(text):
            if word in self.name_vocab:
                return True
            if ("'" in word or "’" in word) and any(
                part in self.name_vocab for part in re.split(r"['’]", word)
            ):
                return True
        return False


# --- recognisers --------------------------------------------------------------------------------
class UkNhsNumberRecognizer(NhsRecognizer):
    """NHS number: 10 digits with any single spaces or hyphens between them, Modulus 11."""

    def validate_result(self, pattern_text: str) -> bool:
        """Return True when the Modulus 11 check digit holds (transforms.identifiers rule)."""
        digits = re.sub(r"\D", "", pattern_text)
        return len(digits) == 10 and nhs_check_digit(digits[:9]) == int(digits[9])


class UkUpnRecognizer(PatternRecognizer):
    """Unique Pupil Number: a check letter then 12 characters; the check letter must hold."""

    screen = UPN_SCREEN  # every UPN holds a letter and eleven digits in a row

    def validate_result(self, pattern_text: str) -> bool:
        """Return True when the UPN's check letter is right (transforms.identifiers rule)."""
        upn = pattern_text.upper()
        return upn_check_letter(upn[1:]) == upn[0]


class UkPostcodeRecognizer(PatternRecognizer):
    """Full UK postcodes: in capitals (`upper_case`), or in any case (`any_case`, scored lower)."""

    screen = POSTCODE_SCREEN  # every postcode ends in a digit and two letters


class UkPhoneRecognizer(PatternRecognizer):
    """UK phone numbers (07 mobile, 01/02 geographic, 03, 08, 09) in national or +44 forms."""

    def validate_result(self, pattern_text: str) -> bool | None:
        """Reject a national number that is not 9 or 10 digits; keep the pattern score otherwise."""
        digits = re.sub(r"\D", "", pattern_text)
        if digits.startswith("0044"):
            digits = digits[4:]
        elif digits.startswith("44") and pattern_text.lstrip().startswith("+"):
            digits = digits[2:]
        digits = digits.removeprefix("0")
        return None if len(digits) in (9, 10) else False


@functools.cache
def offline_tld_extractor() -> tldextract.TLDExtract:
    """Return a tldextract extractor that never fetches: the bundled public-suffix snapshot."""
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


@functools.lru_cache(maxsize=65536)
def _has_public_suffix(domain: str) -> bool:
    # Cached: the same few domains recur across notes and the lookup dominated e-mail checks.
    return bool(offline_tld_extractor()(domain).fqdn)


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's EmailRecognizer; its suffix check uses the bundled snapshot, never the network."""

    def validate_result(self, pattern_text: str) -> bool | None:
        """Return True for a known public suffix; None (keep the pattern score) otherwise."""
        return True if _has_public_suffix(pattern_text.rpartition("@")[2]) else None


class DateOfBirthRecognizer(PatternRecognizer):
    """A date of birth: a full date or month and year next to a birth word, or any full date.

    `screen` is a regex every match of its patterns contains (a year or a numeric date); the fast
    path runs the recogniser only on a text where it matches, because the birth-word lookbehind
    is slow to try at every position of every note.
    """

    screen = DATE_SCREEN


def _patterns(rs: RecognizerSettings, regexes: Mapping[str, str]) -> list[Pattern]:
    return [Pattern(name, regexes[name], rs.scores[name]) for name in ENTITY_PATTERNS[rs.entity]]


def build_recognizers(settings: PiiSettings) -> list:
    """Build the enabled recognisers of `settings`, each with its scores, context and threshold."""
    made = []
    for entity, rs in settings.recognizers.items():
        if not rs.enabled:
            continue
        context = list(rs.context)
        if entity == "UK_NHS":
            recognizer = UkNhsNumberRecognizer(
                patterns=_patterns(rs, {"ten_digits": NHS_REGEX}), supported_entity=entity
            )
        elif entity == "UK_UPN":
            recognizer = UkUpnRecognizer(
                supported_entity=entity,
                patterns=_patterns(rs, {"upn": UPN_REGEX}),
                global_regex_flags=_IGNORE_CASE,
            )
        elif entity == "UK_POSTCODE":
            recognizer = UkPostcodeRecognizer(
                supported_entity=entity,
                patterns=_patterns(
                    rs, {"upper_case": POSTCODE_UPPER_REGEX, "any_case": POSTCODE_ANY_CASE_REGEX}
                ),
                global_regex_flags=_CASE_SENSITIVE,
            )
        elif entity == "PHONE_NUMBER":
            recognizer = UkPhoneRecognizer(
                supported_entity=entity, patterns=_patterns(rs, {"uk_number": PHONE_REGEX})
            )
        elif entity == "EMAIL_ADDRESS":
            regex = EmailRecognizer.PATTERNS[0].regex
            recognizer = OfflineEmailRecognizer(patterns=_patterns(rs, {"email": regex}))
        elif entity == "UK_NINO":
            regex = UkNinoRecognizer.PATTERNS[0].regex
            recognizer = UkNinoRecognizer(patterns=_patterns(rs, {"nino": regex}))
        elif entity == "STREET_ADDRESS":
            regex = street_address_regex(rs.street_types)
            recognizer = PatternRecognizer(
                supported_entity=entity,
                name="UkStreetAddressRecognizer",
                patterns=_patterns(rs, {"numbered_street": regex}),
                global_regex_flags=_CASE_SENSITIVE,
            )
        elif entity == "DATE_OF_BIRTH":
            recognizer = DateOfBirthRecognizer(
                supported_entity=entity,
                patterns=_patterns(
                    rs, {"in_context": DOB_IN_CONTEXT_REGEX, "bare_full_date": FULL_DATE_REGEX}
                ),
                global_regex_flags=_IGNORE_CASE,
            )
        else:  # PERSON
            recognizer = SpacyRecognizer(supported_entities=["PERSON"], name="NameListRecognizer")
            context = list(settings.names.context)
        recognizer.context = context  # exactly the YAML's words, never a class default
        if rs.score_threshold is not None:
            recognizer.score_thresholds = {entity: rs.score_threshold}
        made.append(recognizer)
    return made


def create_analyzer(settings: PiiSettings) -> AnalyzerEngine:
    """Build an offline AnalyzerEngine for `settings` (uncached; see `build_analyzer`).

    Raises:
        PiiConfigError: when a name-list locale is unknown to Faker.
    """
    # Presidio logs at INFO on every call, and its DEBUG messages quote the words around a
    # finding: keep both out of task logs unless someone set these loggers on purpose.
    for name in ("presidio-analyzer", "presidio-anonymizer"):
        library_logger = logging.getLogger(name)
        if library_logger.level == logging.NOTSET or library_logger.level < logging.WARNING:
            library_logger.setLevel(logging.WARNING)
    nlp_engine = NameListNlpEngine(
        load_name_lists(settings.names), settings.names, settings.language
    )
    registry = RecognizerRegistry(
        recognizers=build_recognizers(settings), supported_languages=[settings.language]
    )
    enhancer = LemmaContextAwareEnhancer(
        context_similarity_factor=settings.context.similarity_factor,
        min_score_with_context_similarity=settings.context.min_score_with_context,
        context_prefix_count=settings.context.prefix_words,
        context_suffix_count=settings.context.suffix_words,
        context_matching_mode="whole_word",
    )
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        default_score_threshold=settings.score_threshold,
        supported_languages=[settings.language],
        context_aware_enhancer=enhancer,
    )


@functools.cache
def build_analyzer() -> AnalyzerEngine:
    """Return the process-wide analyzer for the packaged `config/pii.yaml` (built once)."""
    return create_analyzer(load_pii_settings())


@functools.cache
def _anonymizer() -> AnonymizerEngine:
    return AnonymizerEngine()


# --- analysis -----------------------------------------------------------------------------------
def _entity_thresholds(analyzer: AnalyzerEngine) -> dict[str, float]:
    """Each entity's notes threshold: its recogniser's override, else the engine default."""
    thresholds: dict[str, float] = {}
    for recognizer in analyzer.registry.recognizers:
        for entity in recognizer.supported_entities:
            own = recognizer.score_thresholds.get(entity)
            thresholds[entity] = analyzer.default_score_threshold if own is None else own
    return thresholds


def _settle(
    results: list[RecognizerResult], thresholds: Mapping[str, float]
) -> list[RecognizerResult] | None:
    """Return what redaction would act on, or None when only Presidio's full analysis can tell.

    Context words only ever raise scores, and redaction drops every match strictly inside
    another (whatever its score). So when every remaining match is already at its threshold and
    no two of them overlap, the full analysis would redact exactly these spans as these types.
    """
    kept = [
        r
        for r in results
        if not any(
            o.start <= r.start and r.end <= o.end and (o.start, o.end) != (r.start, r.end)
            for o in results
        )
    ]
    if any(r.score < thresholds.get(r.entity_type, 1.0) for r in kept):
        return None
    ordered = sorted(kept, key=lambda r: r.start)
    for previous, current in itertools.pairwise(ordered):
        if current.start < previous.end:
            return None
    return ordered


def analyze_texts(
    analyzer: AnalyzerEngine,
    texts: Sequence[str],
    score_threshold: float | None = None,
    full: bool = False,
) -> list[list[RecognizerResult]]:
    """Analyze distinct texts in one spaCy batch, skipping those that cannot hold an entity.

    A fast path runs the pattern recognisers directly, each on the texts its screen passes, and
    takes names from the name lists alone (`NameListNlpEngine.find_names`); only a text with a
    match below its threshold (one a context word might lift, e.g. a lone family name) or with
    overlapping matches goes through Presidio's full analysis with context. Both paths redact
    the same spans as the same types; `tests/test_pii.py` checks it on the synthetic notes and
    on the guards' index and column values.

    Args:
        analyzer: an analyzer from `create_analyzer` / `build_analyzer`.
        texts: the texts; callers dedupe them first.
        score_threshold: one threshold for every entity (the guards'); None applies the config's
            notes threshold and per-entity overrides.
        full: Presidio's full analysis for every text that may hold an entity (the reference
            the tests hold the fast path to).

    Returns:
        The results for each text, in order.
    """
    nlp_engine = analyzer.nlp_engine
    language = analyzer.supported_languages[0]
    results: list[list[RecognizerResult]] = [[] for _ in texts]
    may_hold_name = getattr(nlp_engine, "may_hold_name", lambda _text: True)
    has_digit_or_at = [bool(_DIGIT_OR_AT.search(text)) for text in texts]
    named = [may_hold_name(text) for text in texts]
    candidates = [i for i in range(len(texts)) if has_digit_or_at[i] or named[i]]
    slow = list(candidates)
    if not full and isinstance(nlp_engine, NameListNlpEngine):
        thresholds = _entity_thresholds(analyzer)
        if score_threshold is not None:
            thresholds = dict.fromkeys(thresholds, score_threshold)
        slow = _analyze_fast(
            analyzer, texts, candidates, has_digit_or_at, named, results, thresholds
        )
    elif score_threshold is not None:
        slow = _could_match(analyzer, texts, slow, named)
    made = nlp_engine.process_batch([texts[i] for i in slow], language, batch_size=256)
    for i, (text, nlp_artifacts) in zip(slow, made, strict=True):
        if not nlp_artifacts.entities and not has_digit_or_at[i]:
            continue
        results[i] = analyzer.analyze(
            text=text,
            language=language,
            nlp_artifacts=nlp_artifacts,
            score_threshold=score_threshold,
        )
    return results


def _could_match(
    analyzer: AnalyzerEngine, texts: Sequence[str], positions: Sequence[int], named: Sequence[bool]
) -> list[int]:
    """Keep the positions some recogniser could report on: a possible name, or a screen hit.

    The guard's values (codes, districts, years) mostly match no pattern at all; Presidio's
    full analysis of each would find nothing. Context only raises the score of a finding, so a
    text no recogniser matches gives no result at any threshold. A recogniser without a screen
    runs on every text.
    """
    keep = {i for i in positions if named[i]}
    rest = [i for i in positions if not named[i]]
    for recognizer in analyzer.registry.recognizers:
        if not rest:
            break
        if isinstance(recognizer, PatternRecognizer):
            hit = _screened(_screen(recognizer), texts, rest)
        elif isinstance(recognizer, SpacyRecognizer):
            continue  # its entities are the name pipeline's: `named` covers every text it tags
        else:
            hit = set(rest)
        keep |= hit
        rest = [i for i in rest if i not in hit]
    return sorted(keep)


def _screen(recognizer: PatternRecognizer) -> tuple[Callable[[str], object], ...]:
    """Return searches of which one finds something in every text `recognizer` reports on.

    The recogniser's own `screen` regex when it has one; else a search with each compiled regex
    Presidio matches its patterns with, under Presidio's regex timeout. Presidio compiles those,
    with the recogniser's global flags, on its first analysis; analysing an empty text makes
    sure that happened, so the screen searches with the very objects the recogniser matches with.
    """
    own = getattr(recognizer, "screen", None)
    if own is not None:
        return (own.search,)
    flags = recognizer.global_regex_flags
    if any(p.compiled_regex is None or p.compiled_with_flags != flags for p in recognizer.patterns):
        recognizer.analyze("", recognizer.supported_entities)
    return tuple(
        functools.partial(p.compiled_regex.search, timeout=REGEX_TIMEOUT_SECONDS)
        for p in recognizer.patterns
    )


def _screened(
    screen: Sequence[Callable[[str], object]], texts: Sequence[str], positions: Iterable[int]
) -> set[int]:
    """Return the positions whose text a search of `screen` finds something in.

    Each search is mapped over all the texts at once. A search that times out counts as a
    match: the recogniser then runs and Presidio handles its own timeout as usual.
    """
    left, hits = list(positions), set()
    for search in screen:
        chosen = [texts[i] for i in left]
        try:
            found = list(map(search, chosen))
        except TimeoutError:
            found = [_search_or_timeout(search, text) for text in chosen]
        hits.update(i for i, match in zip(left, found, strict=True) if match is not None)
        left = [i for i, match in zip(left, found, strict=True) if match is None]
    return hits


def _search_or_timeout(search: Callable[[str], object], text: str) -> object:
    try:
        return search(text)
    except TimeoutError:
        return True


def _analyze_fast(
    analyzer: AnalyzerEngine,
    texts: Sequence[str],
    candidates: Sequence[int],
    has_digit_or_at: Sequence[bool],
    named: Sequence[bool],
    results: list[list[RecognizerResult]],
    thresholds: Mapping[str, float],
) -> list[int]:
    """Fill `results` for the candidates the fast path settles at `thresholds` (by entity).

    Returns:
        The positions left for Presidio's full analysis (whole pipeline, context step).
    """
    nlp_engine = analyzer.nlp_engine
    assert isinstance(nlp_engine, NameListNlpEngine)
    # Every pattern needs a digit, except e-mail, which needs an "@". Each recogniser runs only
    # on a text its screen passes: Presidio's per-call overhead (timing, logging, explanations)
    # costs far more than a search that finds nothing.
    with_pattern = [i for i in candidates if has_digit_or_at[i]]
    with_digit = [i for i in with_pattern if _DIGIT.search(texts[i])]
    with_at = [i for i in with_pattern if "@" in texts[i]]
    to_run: dict[int, list[PatternRecognizer]] = {}
    for recognizer in analyzer.registry.recognizers:
        if isinstance(recognizer, PatternRecognizer):
            pool = with_at if isinstance(recognizer, EmailRecognizer) else with_digit
            for i in _screened(_screen(recognizer), texts, pool):
                to_run.setdefault(i, []).append(recognizer)
    # Names come from the name matcher (or the entity ruler) alone here, with no context step.
    names = nlp_engine.find_names([texts[i] for i in candidates if named[i]])
    slow: list[int] = []
    for i in candidates:
        text = texts[i]
        found: list[RecognizerResult] = []
        if named[i]:  # the names come in the order of the candidates
            found += [
                RecognizerResult("PERSON", start, end, score) for start, end, score in next(names)
            ]
        for recognizer in to_run.get(i, ()):
            found += recognizer.analyze(text, recognizer.supported_entities, None)
        settled = _settle(EntityRecognizer.remove_duplicates(found), thresholds)
        if settled is None:
            slow.append(i)
        else:
            results[i] = settled
    return slow


_REDACT = {"DEFAULT": OperatorConfig("replace")}  # "<ENTITY_TYPE>"
# Presidio's anonymizer merges two findings of one type with only spaces between them.
_SPACES_ONLY = re.compile(r"^( )+$")


def _redact_with_presidio(text: str, results: Sequence[RecognizerResult]) -> tuple[str, list[str]]:
    """Redact through Presidio's AnonymizerEngine (what `redact_text` does in every case)."""
    engine_result = _anonymizer().anonymize(
        text=text,
        analyzer_results=list(results),
        operators=_REDACT,
        conflict_resolution=ConflictResolutionStrategy.REMOVE_INTERSECTIONS,
    )
    return engine_result.text, [item.entity_type for item in engine_result.items]


def redact_text(text: str, results: Sequence[RecognizerResult]) -> tuple[str, list[str]]:
    """Replace every finding with "<ENTITY_TYPE>"; overlaps go to the higher-scored finding.

    This is Presidio's AnonymizerEngine with the "replace" operator and REMOVE_INTERSECTIONS.
    Findings that neither overlap nor are of one type with only spaces between them (nearly
    every note) have nothing for the engine to resolve, so they are replaced here directly with
    the engine's output and order; anything else goes through the engine itself.

    Returns:
        The redacted text and the entity type of each replacement made (last in the text first,
        as the engine lists them).
    """
    if not results:
        return text, []
    spans = sorted((r.start, r.end, r.entity_type) for r in results)
    previous_end, previous_type = 0, None
    for start, end, entity_type in spans:
        if not previous_end <= start < end <= len(text) or (
            entity_type == previous_type and _SPACES_ONLY.search(text[previous_end:start])
        ):
            return _redact_with_presidio(text, results)
        previous_end, previous_type = end, entity_type
    pieces, position = [], 0
    for start, end, entity_type in spans:
        pieces += (text[position:start], f"<{entity_type}>")
        position = end
    pieces.append(text[position:])
    return "".join(pieces), [entity_type for _, _, entity_type in reversed(spans)]


# --- public API ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PiiScan:
    """What the scan of a notes column found: counts only, never a value."""

    rows_scanned: int
    rows_with_pii: int
    entity_counts: dict[str, int]  # entity type -> number of findings; NEVER any value


@dataclass(frozen=True)
class GuardFinding:
    """An entity type found in an index-bound column, and in how many rows."""

    column: str
    entity_type: str
    rows: int


def scan_notes(notes: pd.Series) -> tuple[PiiScan, pd.Series]:
    """Find personal data in free-text notes and return them redacted.

    Each distinct non-blank note is analyzed once; a note with no digit, no "@" and no word on
    the name lists skips analysis altogether.

    Args:
        notes: free text, one note per row; blanks and <NA> allowed.

    Returns:
        The scan (rows, rows with a finding, findings by entity type) and the notes with each
        finding replaced by "<ENTITY_TYPE>" (e.g. "<PERSON>"), same index, <NA> kept.
    """
    text = notes.astype("string")
    present = text.notna() & text.str.strip().ne("")
    frequency = text[present].value_counts(sort=False)
    distinct = [str(v) for v in frequency.index]
    analyzer = build_analyzer()
    found = analyze_texts(analyzer, distinct)
    redacted_by_value: dict[str, str] = {}
    counts: Counter[str] = Counter()
    rows_with_pii = 0
    for value, rows, results in zip(distinct, frequency.to_numpy(), found, strict=True):
        if not results:
            continue
        redacted, entity_types = redact_text(value, results)
        redacted_by_value[value] = redacted
        rows_with_pii += int(rows)
        for entity_type in entity_types:
            counts[entity_type] += int(rows)
    out = text.map(lambda v: redacted_by_value.get(v, v), na_action="ignore").astype("string")
    scan = PiiScan(
        rows_scanned=len(notes),
        rows_with_pii=rows_with_pii,
        entity_counts=dict(sorted(counts.items())),
    )
    logger.info(
        "pii: scanned %d notes, %d with personal data: %s",
        scan.rows_scanned,
        scan.rows_with_pii,
        scan.entity_counts,
    )
    return scan, out


def guard_index_values(frame: pd.DataFrame, columns: Sequence[str]) -> list[GuardFinding]:
    """Last line of defence before a load: look for personal data in index-bound columns.

    Every distinct non-blank value of each column is analyzed at the guard threshold
    (`guard_score_threshold` in the YAML). Legitimate minimised values (year of birth, sex code,
    postcode district, school URN, GP practice code, service codes, GSS codes, 64-hex
    pseudonyms) match nothing; a full postcode, NHS number, name, phone, e-mail ... does.

    Args:
        frame: the rows about to be loaded.
        columns: the columns to check.

    Returns:
        One finding per (column, entity type) with the number of rows affected; empty when clean.

    Raises:
        KeyError: when a column is not in the frame (the message names it).
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"pii guard: columns {missing} are not in the frame")
    analyzer = build_analyzer()
    threshold = load_pii_settings().guard_score_threshold
    findings: list[GuardFinding] = []
    for column in columns:
        text = frame[column].astype("string").str.strip()
        frequency = text[text.notna() & text.ne("")].value_counts(sort=False)
        distinct = [str(v) for v in frequency.index]
        found = analyze_texts(analyzer, distinct, threshold)
        rows_by_entity: Counter[str] = Counter()
        for value, rows, results in zip(distinct, frequency.to_numpy(), found, strict=True):
            # Resolve overlaps as redaction would: a phone is not also reported as an NHS number.
            for entity_type in set(redact_text(value, results)[1]):
                rows_by_entity[entity_type] += int(rows)
        for entity_type, rows in sorted(rows_by_entity.items()):
            findings.append(GuardFinding(column, entity_type, rows))
            logger.warning("pii guard: %s found in column %s (%d rows)", entity_type, column, rows)
    return findings
