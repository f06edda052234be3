"""Load the packaged GX suites and the rule book, refusing anything GX would silently drop.

`ExpectationSuite(**json)` logs and skips an expectation whose class GX cannot find (a custom
expectation not imported yet, a typo in `type`), so a suite could lose a privacy check without
failing. `load_suite` registers the custom expectations first, checks every `type` itself and then
checks that the built suite holds as many expectations as the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite

SEVERITIES = ("critical", "warning")
CHILDREN_SUITE = "children_extract"
OPTOUT_SUITE = "optout_register"


class SuiteLoadError(ValueError):
    """A suite file cannot be loaded exactly as written."""


class RuleBookError(ValueError):
    """`rules.yaml` is invalid or does not match the suites; the message lists every problem."""


@dataclass(frozen=True)
class Rule:
    """What breaking one rule costs a row, and what the council should do about it."""

    name: str
    severity: str  # "critical" or "warning"
    fix: str


@dataclass(frozen=True)
class SuiteRules:
    """The rules of one suite and its file-level refusal threshold."""

    suite: str
    max_critical_row_fraction: float
    rules: dict[str, Rule]


def _package_text(*parts: str) -> str:
    return resources.files("expectations").joinpath(*parts).read_text(encoding="utf-8")


def read_suite_json(name: str) -> dict[str, Any]:
    """Return the raw JSON of a packaged suite, e.g. "children_extract"."""
    return json.loads(_package_text("suites", f"{name}.json"))


def build_suite(data: dict[str, Any], rules: SuiteRules | None = None) -> ExpectationSuite:
    """Build a GX suite from its JSON form, raising instead of dropping any expectation.

    Args:
        data: the suite as read from JSON (`name`, `expectations`, optional `meta`, `notes`).
        rules: when given, each expectation's GX `severity` is set from the rule book, and every
            `meta.rule` must be a rule of it.

    Returns:
        The suite, holding exactly as many expectations as `data` lists.

    Raises:
        SuiteLoadError: an expectation type GX does not know, arguments it refuses, an
            expectation without `meta.rule`, a rule missing from `rules`, or GX dropped an
            expectation anyway. Every problem of the file is listed, not only the first.
    """
    import great_expectations as gx
    from great_expectations.expectations.registry import get_expectation_impl

    import expectations.custom  # noqa: F401  # registers the custom expectations with GX

    name = data.get("name", "<unnamed>")
    configs = [dict(c) for c in data.get("expectations", [])]
    problems: list[str] = []
    for i, config in enumerate(configs):
        kind = config.get("type")
        try:
            impl = get_expectation_impl(str(kind))
        except Exception:  # GX raises ExpectationNotFoundError; anything else is as fatal
            problems.append(f"expectation {i} has type {kind!r}, which GX does not know")
        else:
            try:
                impl(**config.get("kwargs", {}))
            except Exception as err:  # pydantic's ValidationError, GX's configuration errors
                summary = " ".join(str(err).split())
                problems.append(f"expectation {i} ({kind}) has invalid arguments: {summary}")
        rule = (config.get("meta") or {}).get("rule")
        if not rule:
            problems.append(f"expectation {i} ({kind}) has no meta.rule")
        elif rules is not None:
            if rule not in rules.rules:
                problems.append(f"expectation {i} ({kind}) names rule {rule!r}, not in rules.yaml")
            else:
                config["severity"] = rules.rules[rule].severity
    if problems:
        raise SuiteLoadError(f"suite {name!r} cannot be loaded: " + "; ".join(problems))

    try:
        suite = gx.ExpectationSuite(
            name=name, expectations=configs, meta=data.get("meta"), notes=data.get("notes")
        )
    except Exception as err:
        raise SuiteLoadError(f"suite {name!r} cannot be loaded: {err}") from err
    if len(suite.expectations) != len(configs):
        raise SuiteLoadError(
            f"suite {name!r}: GX kept {len(suite.expectations)} of {len(configs)} expectations; "
            "the others have invalid arguments (see the great_expectations log)"
        )
    return suite


def load_suite(name: str, rules: SuiteRules | None = None) -> ExpectationSuite:
    """Load the packaged suite `name` (see `build_suite`)."""
    return build_suite(read_suite_json(name), rules)


def parse_rules(document: dict[str, Any]) -> dict[str, SuiteRules]:
    """Validate a rule book document (the parsed `rules.yaml`) and return it per suite.

    Raises:
        RuleBookError: listing every problem found, not only the first.
    """
    problems: list[str] = []
    if document.get("version") != 1:
        problems.append("version must be 1")
    suites = document.get("suites")
    if not isinstance(suites, dict) or not suites:
        raise RuleBookError("rules.yaml: 'suites' must map suite names to their rules")
    book: dict[str, SuiteRules] = {}
    for suite, body in suites.items():
        if not isinstance(body, dict):
            problems.append(f"{suite}: must be a mapping")
            continue
        fraction = body.get("max_critical_row_fraction")
        if not isinstance(fraction, int | float) or isinstance(fraction, bool):
            problems.append(f"{suite}: max_critical_row_fraction must be a number")
            fraction = 0.0
        elif not 0 <= fraction <= 1:
            problems.append(f"{suite}: max_critical_row_fraction must lie between 0 and 1")
        rules: dict[str, Rule] = {}
        for rule, spec in (body.get("rules") or {}).items():
            spec = spec if isinstance(spec, dict) else {}
            severity, fix = spec.get("severity"), spec.get("fix")
            if severity not in SEVERITIES:
                problems.append(f"{suite}.{rule}: severity must be one of {', '.join(SEVERITIES)}")
            if not isinstance(fix, str) or not fix.strip():
                problems.append(f"{suite}.{rule}: fix must be a sentence for the council")
            rules[rule] = Rule(name=rule, severity=str(severity), fix=str(fix).strip())
        if not rules:
            problems.append(f"{suite}: has no rules")
        book[suite] = SuiteRules(suite, float(fraction), rules)
    if problems:
        raise RuleBookError("rules.yaml is invalid: " + "; ".join(problems))
    return book


def check_rules_match_suite(rules: SuiteRules, suite_json: dict[str, Any]) -> None:
    """Raise RuleBookError unless the suite uses exactly the rules the rule book lists for it."""
    used = {(c.get("meta") or {}).get("rule") for c in suite_json.get("expectations", [])}
    missing = sorted(str(r) for r in used - set(rules.rules))
    unused = sorted(set(rules.rules) - used)
    problems = [f"rule {r!r} is used by the suite but not in rules.yaml" for r in missing]
    problems += [f"rule {r!r} is in rules.yaml but no expectation uses it" for r in unused]
    if problems:
        raise RuleBookError(f"suite {rules.suite!r}: " + "; ".join(problems))


@lru_cache(maxsize=1)
def load_rules() -> dict[str, SuiteRules]:
    """Load and check the packaged `rules.yaml` against the packaged suites (cached)."""
    book = parse_rules(yaml.safe_load(_package_text("rules.yaml")))
    for suite, rules in book.items():
        check_rules_match_suite(rules, read_suite_json(suite))
    return book
