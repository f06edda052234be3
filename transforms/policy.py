"""The minimisation policy: `config/policy.yaml` as a typed object, every error reported at once."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from transforms.contract import CHILDREN_COLUMNS

COARSENINGS = {
    "none",
    "year",
    "postcode_district",
    "non_sensitive_services",
    "any_sensitive_service",
}
SHIELDED_TREATMENTS = {"drop", "keep"}
FIELD_KEYS = {"source", "coarsen", "shielded", "reason"}


class PolicyError(ValueError):
    """The policy file is invalid; the message lists every problem found."""


@dataclass(frozen=True)
class FieldRule:
    """One index field: where it comes from, how it is coarsened and why it is held."""

    name: str
    source: str
    coarsen: str
    shielded: str  # "drop": blank for a shielded child; "keep": held even when shielded
    reason: str


@dataclass(frozen=True)
class Service:
    """A service code councils may send, and whether naming it would be sensitive."""

    code: str
    name: str
    sensitive: bool


@dataclass(frozen=True)
class Policy:
    """The validated policy: index fields in file order and the service code list."""

    fields: tuple[FieldRule, ...]
    services: dict[str, Service]

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of the attribute fields the index may hold, in policy order."""
        return tuple(f.name for f in self.fields)

    @property
    def sensitive_codes(self) -> frozenset[str]:
        """Service codes that must never be named in the index."""
        return frozenset(c for c, s in self.services.items() if s.sensitive)


def parse_policy(document: object) -> Policy:
    """Validate a parsed policy document.

    Args:
        document: the YAML document as loaded by `yaml.safe_load`.

    Returns:
        The typed policy.

    Raises:
        PolicyError: listing every problem found, one per line, each saying what to fix.
    """
    errors: list[str] = []
    if not isinstance(document, dict):
        raise PolicyError("policy: the file must be a mapping with 'version', 'fields', 'services'")
    if document.get("version") != 1:
        errors.append("version: must be 1")
    raw_fields = document.get("fields")
    raw_services = document.get("services")
    if not isinstance(raw_fields, dict) or not raw_fields:
        errors.append("fields: must be a non-empty mapping of index field name to its rule")
        raw_fields = {}
    if not isinstance(raw_services, dict) or not raw_services:
        errors.append("services: must be a non-empty mapping of service code to name/sensitive")
        raw_services = {}

    services: dict[str, Service] = {}
    for code, spec in raw_services.items():
        where = f"services.{code}"
        if not isinstance(spec, dict):
            errors.append(f"{where}: must be a mapping with 'name' and 'sensitive'")
            continue
        if not isinstance(spec.get("name"), str) or not spec.get("name"):
            errors.append(f"{where}.name: give the service's name")
        if not isinstance(spec.get("sensitive"), bool):
            errors.append(f"{where}.sensitive: must be true or false")
        if not str(code).isalnum() or str(code) != str(code).upper():
            errors.append(f"{where}: codes are upper-case letters and digits")
        sensitive = spec.get("sensitive") is True
        services[str(code)] = Service(str(code), str(spec.get("name")), sensitive)

    fields: list[FieldRule] = []
    for name, spec in raw_fields.items():
        where = f"fields.{name}"
        if not isinstance(spec, dict):
            errors.append(f"{where}: must be a mapping with {sorted(FIELD_KEYS)}")
            continue
        unknown = set(spec) - FIELD_KEYS
        if unknown:
            errors.append(f"{where}: unknown keys {sorted(unknown)}; allowed {sorted(FIELD_KEYS)}")
        missing = FIELD_KEYS - set(spec)
        if missing:
            errors.append(f"{where}: missing {sorted(missing)}")
        if spec.get("source") not in CHILDREN_COLUMNS:
            errors.append(f"{where}.source: {spec.get('source')!r} is not a column of the extract")
        if spec.get("source") in {
            "notes",
            "nhs_number",
            "upn",
            "given_name",
            "family_name",
            "former_family_name",
            "address",
            "carer_name",
            "carer_phone",
            "local_child_id",
        }:
            errors.append(
                f"{where}.source: {spec.get('source')} is identifying and never reaches the index"
            )
        if spec.get("coarsen") not in COARSENINGS:
            errors.append(
                f"{where}.coarsen: {spec.get('coarsen')!r}; choose one of {sorted(COARSENINGS)}"
            )
        if spec.get("shielded") not in SHIELDED_TREATMENTS:
            errors.append(f"{where}.shielded: must be one of {sorted(SHIELDED_TREATMENTS)}")
        if "reason" in spec and len(str(spec.get("reason") or "").strip()) < 10:
            errors.append(f"{where}.reason: say why the index needs this field")
        fields.append(
            FieldRule(
                str(name),
                str(spec.get("source")),
                str(spec.get("coarsen")),
                str(spec.get("shielded")),
                str(spec.get("reason")),
            )
        )
    if errors:
        listed = "\n  ".join(errors)
        raise PolicyError(f"policy has {len(errors)} error(s):\n  {listed}")
    return Policy(tuple(fields), services)


def load_policy(path: Path | None = None) -> Policy:
    """Load and validate the policy file (the packaged `config/policy.yaml` by default)."""
    if path is None:
        text = resources.files("transforms").joinpath("config/policy.yaml").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    return parse_policy(yaml.safe_load(text))
