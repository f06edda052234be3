"""Word lists a population is drawn from: names and streets from Faker's en_GB data, notes text.

Populations draw indices into these arrays instead of calling Faker once per row, which keeps
generation vectorised. Lists are taken in Faker's order, so a seed gives the same people for as
long as the installed Faker's data does not change.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from faker.providers.address.en_GB import Provider as AddressProvider
from faker.providers.person.en_GB import Provider as PersonProvider

FIRST_NAMES_MALE: tuple[str, ...] = tuple(PersonProvider.first_names_male)
FIRST_NAMES_FEMALE: tuple[str, ...] = tuple(PersonProvider.first_names_female)
LAST_NAMES: tuple[str, ...] = tuple(PersonProvider.last_names)
# Faker weights surnames by frequency; a population follows the same weights.
LAST_NAME_WEIGHTS = np.array([PersonProvider.last_names[n] for n in LAST_NAMES], dtype=np.float64)
LAST_NAME_WEIGHTS /= LAST_NAME_WEIGHTS.sum()

# Faker's suffix list is US-flavoured ("Burgs", "Stravenue"); keep the ones an English street has.
_ENGLISH_SUFFIXES = frozenset(
    (
        "Avenue", "Close", "Court", "Crescent", "Drive", "Fields", "Gardens", "Green", "Grove",
        "Hill", "Lane", "Meadows", "Mews", "Mill", "Park", "Place", "Road", "Row", "Square",
        "Street", "Terrace", "View", "Walk", "Way",
    )
)  # fmt: skip
STREET_SUFFIXES: tuple[str, ...] = tuple(
    dict.fromkeys(s for s in AddressProvider.street_suffixes if s in _ENGLISH_SUFFIXES)
)

EMAIL_DOMAINS = ("example.com", "example.org", "example.net")  # RFC 2606: never a real mailbox

# Notes that carry no personal data: no names, numbers, places or dates. Some hold commas and
# double quotes on purpose, so CSV quoting is exercised.
HARMLESS_NOTES: tuple[str, ...] = (
    "Attended review meeting.",
    "No concerns raised at visit.",
    "Family engaged well with early help.",
    "Awaiting school report.",
    "Health visitor check completed.",
    "Case closed, no further action.",
    "Referred to speech and language therapy.",
    "Attendance improving this term.",
    "Support plan updated.",
    "Parent asked for a change of key worker.",
    "Transport arranged for appointments.",
    "Letter sent to family.",
    "Home visit completed, all well.",
    "Did not attend appointment; will rebook.",
    "Consent form returned.",
    "Discussed at team meeting.",
    "Placement stable.",
    "Reviewed by duty team, no action needed.",
    "Free school meals application supported.",
    'Carer said "all fine" at last contact.',
    "Meeting held with school, health and family.",
    "Strengths and difficulties questionnaire completed.",
    "Needs interpreter at meetings.",
    "Prefers contact by text message.",
)

# Notes that carry personal data. {placeholders} are filled per row and their character spans are
# recorded in the ground truth; see `synthetic_data.notes` for what each placeholder holds.
PII_NOTE_TEMPLATES: tuple[str, ...] = (
    "Spoke to {carer} on {phone} about attendance.",
    "Mum asked for letters to go to {email} from now on.",
    "Contact {carer} ({phone}) before any home visit.",
    "Family previously lived at {address}, {postcode}.",
    "NHS number {nhs} confirmed with GP surgery.",
    "{child} has been staying with {other} at {address}, {postcode}.",
    "Referral made by {other}, tel {phone}, email {email}.",
    "Sibling's NHS no. is {nhs}; see sibling record.",
    "Carer {carer} changed number to {phone}.",
    "Please copy {email} into review correspondence.",
    "Dad, {other}, lives at {address} {postcode} and wants contact.",
    "{child} missed two appointments; left message for {carer}.",
    "New address given as {address}, {postcode}. Phone {phone}.",
    "School asked that {email} is used for {child}'s reports.",
)


def string_array(values: tuple[str, ...] | list[str]) -> pa.Array:
    """Return `values` as an Arrow string array, ready for `take` with numpy indices."""
    return pa.array(list(values), type=pa.string())
