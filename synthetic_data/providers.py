"""Faker providers for a child record's identifiers: NHS number, UPN, URN, GP code, council.

Use them for a handful of values (fixtures, examples, a tester's spreadsheet); whole populations
are drawn vectorised by `synthetic_data.population`, which follows the same rules. Check digits come
from `transforms.identifiers`, so the providers and the validators cannot drift apart.

    >>> fake = make_faker(seed=7)
    >>> fake.nhs_number()[:3]
    '999'
"""

from __future__ import annotations

from faker import Faker
from faker.providers import BaseProvider

from synthetic_data.councils import COUNCILS, Council
from transforms.identifiers import nhs_check_digit, upn_check_letter

# NHS numbers starting 999 are never issued to patients (PDS test range). Only these are used.
NHS_TEST_PREFIX = "999"
POSTCODE_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # Royal Mail: never C, I, K, M, O or V


class NhsNumberProvider(BaseProvider):
    """NHS numbers of the test range 999 000 0000 to 999 999 9999, with a valid check digit."""

    def nhs_number(self, formatted: bool = False) -> str:
        """Return a valid test NHS number: "9991234560", or "999 123 4560" when `formatted`."""
        while True:
            first_nine = f"{NHS_TEST_PREFIX}{self.random_int(0, 999_999):06d}"
            check = nhs_check_digit(first_nine)
            if check is not None:  # about 1 in 11 bodies has no valid check digit
                break
        number = f"{first_nine}{check}"
        return f"{number[:3]} {number[3:6]} {number[6:]}" if formatted else number


class EducationProvider(BaseProvider):
    """Unique Pupil Numbers and school Unique Reference Numbers."""

    def upn(self, la_number: int | str | None = None, year: int | None = None) -> str:
        """Return a permanent UPN: check letter, LA number, establishment, 2-digit year, serial.

        Args:
            la_number: the 3-digit DfE local authority number; a random council's when omitted.
            year: the year of issue (two or four digits); random within 2000-2025 when omitted.

        Returns:
            13 characters, e.g. "B801200005001", whose check letter holds.

        Raises:
            ValueError: when `la_number` is not three digits.
        """
        la = la_number if la_number is not None else self.random_element(COUNCILS).dfe_la_number
        la_text = str(la)
        if len(la_text) != 3 or not la_text.isdigit():
            raise ValueError(f"la_number must be a 3-digit DfE LA number such as 383, not {la!r}")
        yy = (year if year is not None else self.random_int(2000, 2025)) % 100
        establishment = self.random_int(1000, 7999)  # 1xxx nursery to 7xxx special schools
        body = f"{la_text}{establishment:04d}{yy:02d}{self.random_int(1, 999):03d}"
        return upn_check_letter(body) + body

    def school_urn(self) -> str:
        """Return a 6-digit school Unique Reference Number."""
        return str(self.random_int(100_000, 149_999))


class CouncilProvider(BaseProvider):
    """Councils with children's services and the codes that depend on them."""

    def council(self) -> Council:
        """Return a random `Council` (GSS code, name, DfE LA number, postcode districts...)."""
        return self.random_element(COUNCILS)

    def council_code(self) -> str:
        """Return a random council's GSS code, e.g. "E08000035"."""
        return self.council().gss_code

    def gp_practice_code(self, council: Council | None = None) -> str:
        """Return a GP practice ODS code, e.g. "B86012", shaped like the council's practices."""
        chosen = council if council is not None else self.council()
        prefix = self.random_element(chosen.ods_prefixes)
        return f"{prefix}{self.random_int(1, 999):03d}"

    def council_postcode(self, council: Council | None = None) -> str:
        """Return a valid postcode in one of the council's districts, e.g. "LS6 2AB"."""
        chosen = council if council is not None else self.council()
        district = self.random_element(chosen.postcode_districts)
        unit = "".join(self.random_elements(POSTCODE_INWARD_LETTERS, length=2, unique=False))
        return f"{district} {self.random_digit()}{unit}"


PROVIDERS: tuple[type[BaseProvider], ...] = (NhsNumberProvider, EducationProvider, CouncilProvider)


def make_faker(seed: int) -> Faker:
    """Return an en_GB Faker with the registry providers added, seeded for repeatable values."""
    fake = Faker("en_GB")
    for provider in PROVIDERS:
        fake.add_provider(provider)
    fake.seed_instance(seed)
    return fake
