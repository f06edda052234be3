"""Real English upper-tier councils with children's services, as synthetic populations use them.

GSS codes (ONS) and DfE local authority numbers are real; postcode districts are a plausible
subset of each council's area; GP practice prefixes are ODS-ish (the letter and two digits the
area's practices tend to start with), not a register. Phone numbers come from Ofcom's drama ranges,
reserved for fiction, so a synthetic number never rings a real person.
"""

from __future__ import annotations

from dataclasses import dataclass

MOBILE_DRAMA_PREFIX = "07700 900"  # Ofcom: 07700 900000 to 07700 900999 are reserved for drama
FICTIONAL_LANDLINE_PREFIX = "01632 960"  # Ofcom: 01632 960000 to 01632 960999


@dataclass(frozen=True)
class Council:
    """One council that sends extracts: its codes and what its children's records look like."""

    gss_code: str  # ONS code, e.g. E08000035; names the council's landing folder
    name: str
    dfe_la_number: int  # 3-digit DfE local authority number, the first digits of a UPN
    postcode_areas: tuple[str, ...]  # e.g. ("LS", "WF")
    postcode_districts: tuple[str, ...]  # outward codes children's addresses are drawn from
    ods_prefixes: tuple[str, ...]  # first three characters of the area's GP practice codes
    landline_prefix: str  # a drama range: prefix + three digits is a complete number
    id_prefix: str  # letters the council's own child ids start with


def _districts(area: str, numbers: range | tuple[int, ...]) -> tuple[str, ...]:
    return tuple(f"{area}{n}" for n in numbers)


def _skip(numbers: range, *left_out: int) -> tuple[int, ...]:
    return tuple(n for n in numbers if n not in left_out)


# The first three are the demo's councils (PopulationConfig.councils takes councils in this order).
COUNCILS: tuple[Council, ...] = (
    Council(
        gss_code="E08000035",
        name="Leeds",
        dfe_la_number=383,
        postcode_areas=("LS", "WF"),
        postcode_districts=(*_districts("LS", _skip(range(1, 29), 24)), "WF3"),
        ods_prefixes=("B86",),
        landline_prefix="0113 496 0",
        id_prefix="LDS",
    ),
    Council(
        gss_code="E08000003",
        name="Manchester",
        dfe_la_number=352,
        postcode_areas=("M",),
        postcode_districts=_districts("M", (*_skip(range(1, 24), 5, 6, 7, 10, 17), 40)),
        ods_prefixes=("P84",),
        landline_prefix="0161 496 0",
        id_prefix="MAN",
    ),
    Council(
        gss_code="E10000016",
        name="Kent",
        dfe_la_number=886,
        postcode_areas=("ME", "CT", "TN", "DA"),
        postcode_districts=(
            _districts("ME", range(9, 21))
            + _districts("CT", range(1, 22))
            + _districts("TN", (1, 2, 3, 4, *range(8, 19), *range(23, 31)))
            + _districts("DA", (1, 2, 3, 4, 9, 10, 11, 12, 13))
        ),
        ods_prefixes=("G82",),
        landline_prefix=FICTIONAL_LANDLINE_PREFIX,
        id_prefix="KNT",
    ),
    Council(
        gss_code="E08000025",
        name="Birmingham",
        dfe_la_number=330,
        postcode_areas=("B",),
        postcode_districts=_districts("B", (*_skip(range(1, 39), 22), 42, 44, 45)),
        ods_prefixes=("M85",),
        landline_prefix="0121 496 0",
        id_prefix="BHM",
    ),
    Council(
        gss_code="E06000023",
        name="Bristol, City of",
        dfe_la_number=801,
        postcode_areas=("BS",),
        postcode_districts=_districts("BS", _skip(range(1, 17), 12)),
        ods_prefixes=("L81",),
        landline_prefix="0117 496 0",
        id_prefix="BRS",
    ),
    Council(
        gss_code="E09000007",
        name="Camden",
        dfe_la_number=202,
        postcode_areas=("NW", "WC", "N"),
        postcode_districts=("NW1", "NW3", "NW5", "NW6", "WC1E", "WC1H", "WC1N", "WC1X", "N6"),
        ods_prefixes=("F83",),
        landline_prefix="020 7946 0",
        id_prefix="CMD",
    ),
    Council(
        gss_code="E08000012",
        name="Liverpool",
        dfe_la_number=341,
        postcode_areas=("L",),
        postcode_districts=_districts("L", (*_skip(range(1, 20), 10), 24, 25, 27)),
        ods_prefixes=("N82",),
        landline_prefix="0151 496 0",
        id_prefix="LIV",
    ),
    Council(
        gss_code="E08000032",
        name="Bradford",
        dfe_la_number=380,
        postcode_areas=("BD",),
        postcode_districts=_districts("BD", (*_skip(range(1, 19), 11), 20, 21, 22)),
        ods_prefixes=("B83",),
        landline_prefix=FICTIONAL_LANDLINE_PREFIX,
        id_prefix="BFD",
    ),
    Council(
        gss_code="E08000021",
        name="Newcastle upon Tyne",
        dfe_la_number=391,
        postcode_areas=("NE",),
        postcode_districts=_districts("NE", (1, 2, 3, 4, 5, 6, 7, 13, 15)),
        ods_prefixes=("A86",),
        landline_prefix="0191 498 0",
        id_prefix="NCL",
    ),
    Council(
        gss_code="E09000012",
        name="Hackney",
        dfe_la_number=204,
        postcode_areas=("E", "N"),
        postcode_districts=("E2", "E5", "E8", "E9", "N1", "N16"),
        ods_prefixes=("F84",),
        landline_prefix="020 7946 0",
        id_prefix="HCK",
    ),
    Council(
        gss_code="E06000018",
        name="Nottingham",
        dfe_la_number=892,
        postcode_areas=("NG",),
        postcode_districts=_districts("NG", (*range(1, 9), 11)),
        ods_prefixes=("C84",),
        landline_prefix="0115 496 0",
        id_prefix="NOT",
    ),
    Council(
        gss_code="E06000016",
        name="Leicester",
        dfe_la_number=856,
        postcode_areas=("LE",),
        postcode_districts=_districts("LE", range(1, 6)),
        ods_prefixes=("C82",),
        landline_prefix="0116 496 0",
        id_prefix="LCR",
    ),
    Council(
        gss_code="E10000012",
        name="Essex",
        dfe_la_number=881,
        postcode_areas=("CM", "CO", "SS"),
        postcode_districts=(
            _districts("CM", range(1, 10))
            + _districts("CO", range(1, 17))
            + _districts("SS", range(11, 17))
        ),
        ods_prefixes=("F81",),
        landline_prefix=FICTIONAL_LANDLINE_PREFIX,
        id_prefix="ESX",
    ),
    Council(
        gss_code="E10000017",
        name="Lancashire",
        dfe_la_number=888,
        postcode_areas=("PR", "BB", "LA", "FY"),
        postcode_districts=(
            _districts("PR", range(1, 8))
            + _districts("BB", range(4, 13))
            + _districts("LA", range(1, 7))
            + _districts("FY", range(5, 9))
        ),
        ods_prefixes=("P81",),
        landline_prefix=FICTIONAL_LANDLINE_PREFIX,
        id_prefix="LAN",
    ),
    Council(
        gss_code="E08000036",
        name="Wakefield",
        dfe_la_number=384,
        postcode_areas=("WF",),
        postcode_districts=_districts("WF", range(1, 11)),
        ods_prefixes=("B87",),
        landline_prefix=FICTIONAL_LANDLINE_PREFIX,
        id_prefix="WKF",
    ),
    Council(
        gss_code="E10000020",
        name="Norfolk",
        dfe_la_number=926,
        postcode_areas=("NR", "PE"),
        postcode_districts=_districts("NR", range(1, 32)) + _districts("PE", range(30, 39)),
        ods_prefixes=("D82",),
        landline_prefix=FICTIONAL_LANDLINE_PREFIX,
        id_prefix="NFK",
    ),
    Council(
        gss_code="E10000008",
        name="Devon",
        dfe_la_number=878,
        postcode_areas=("EX",),
        postcode_districts=_districts("EX", _skip(range(1, 40), 23)),
        ods_prefixes=("L83",),
        landline_prefix=FICTIONAL_LANDLINE_PREFIX,
        id_prefix="DEV",
    ),
    Council(
        gss_code="E10000030",
        name="Surrey",
        dfe_la_number=936,
        postcode_areas=("GU", "KT", "RH"),
        postcode_districts=(
            _districts("GU", (*range(1, 11), *range(21, 28)))
            + _districts("KT", range(10, 25))
            + _districts("RH", range(1, 10))
        ),
        ods_prefixes=("H81",),
        landline_prefix=FICTIONAL_LANDLINE_PREFIX,
        id_prefix="SRY",
    ),
    Council(
        gss_code="E10000014",
        name="Hampshire",
        dfe_la_number=850,
        postcode_areas=("SO", "GU", "RG", "PO"),
        postcode_districts=(
            _districts("SO", (20, 21, 22, 23, 24, 30, 31, 32, 40, 41, 42, 43, 50, 51, 52, 53))
            + _districts("GU", (11, 12, 13, 14, 30, 31, 32, 33, 34, 35))
            + _districts("RG", range(21, 30))
            + _districts("PO", range(7, 18))
        ),
        ods_prefixes=("J82",),
        landline_prefix=FICTIONAL_LANDLINE_PREFIX,
        id_prefix="HAM",
    ),
    Council(
        gss_code="E06000052",
        name="Cornwall",
        dfe_la_number=908,
        postcode_areas=("TR", "PL"),
        postcode_districts=(
            _districts("TR", range(1, 21)) + _districts("PL", (*range(11, 19), *range(22, 33)))
        ),
        ods_prefixes=("L82",),
        landline_prefix=FICTIONAL_LANDLINE_PREFIX,
        id_prefix="CON",
    ),
)

COUNCILS_BY_CODE: dict[str, Council] = {c.gss_code: c for c in COUNCILS}


def council_by_code(gss_code: str) -> Council:
    """Return the council with this GSS code.

    Raises:
        KeyError: when the code is not one of `COUNCILS`, naming the codes that are.
    """
    try:
        return COUNCILS_BY_CODE[gss_code]
    except KeyError:
        known = ", ".join(COUNCILS_BY_CODE)
        raise KeyError(f"unknown council code {gss_code!r}; known codes: {known}") from None
