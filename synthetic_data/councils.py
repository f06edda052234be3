"""Real English upper-tier councils with children's services, as synthetic populations use them.

All 153 of them since April 2023 (152 from 2021 to 2023; the Cumbria split made 153): E06
unitaries, E08 metropolitan boroughs, E09 London boroughs and the City of London, E10 counties.
GSS codes (ONS) and DfE local authority numbers are real; each council's size is its approximate
number of residents aged 0-17, rounded, from ONS mid-year estimates as remembered, not a table
lookup: good for splitting a national population in proportion, not for statistics. Postcode
districts are a plausible subset of each council's area; GP practice prefixes are ODS-ish (the
letter and two digits the area's practices tend to start with), not a register. Phone numbers come
from Ofcom's drama ranges, reserved for fiction, so a synthetic number never rings a real person.
"""

from __future__ import annotations

import re
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
    children_approx: int  # residents aged 0-17, approximate (see the module docstring)


def _districts(area: str, numbers: range | tuple[int, ...]) -> tuple[str, ...]:
    return tuple(f"{area}{n}" for n in numbers)


def _skip(numbers: range, *left_out: int) -> tuple[int, ...]:
    return tuple(n for n in numbers if n not in left_out)


def _expand(spec: str) -> tuple[str, ...]:
    """Return the districts of a spec such as "BL1-7 M26 EC1A": ranges expand, others stay."""
    districts: list[str] = []
    for part in spec.split():
        match = re.fullmatch(r"([A-Z]{1,2})(\d+)-(\d+)", part)
        if match:
            area, low, high = match[1], int(match[2]), int(match[3])
            districts.extend(f"{area}{n}" for n in range(low, high + 1))
        else:
            districts.append(part)
    return tuple(districts)


def _area(district: str) -> str:
    return "".join(ch for ch in district[:2] if ch.isalpha())


# The councils the demos and tests know, first three first (PopulationConfig.councils takes
# councils in the order of COUNCILS).
DEMO_COUNCILS: tuple[Council, ...] = (
    Council(
        gss_code="E08000035",
        name="Leeds",
        dfe_la_number=383,
        postcode_areas=("LS", "WF"),
        postcode_districts=(*_districts("LS", _skip(range(1, 29), 24)), "WF3"),
        ods_prefixes=("B86",),
        landline_prefix="0113 496 0",
        id_prefix="LDS",
        children_approx=175_000,
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
        children_approx=128_000,
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
        children_approx=345_000,
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
        children_approx=290_000,
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
        children_approx=95_000,
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
        children_approx=38_000,
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
        children_approx=97_000,
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
        children_approx=147_000,
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
        children_approx=60_000,
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
        children_approx=56_000,
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
        children_approx=65_000,
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
        children_approx=88_000,
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
        children_approx=325_000,
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
        children_approx=260_000,
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
        children_approx=75_000,
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
        children_approx=180_000,
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
        children_approx=150_000,
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
        children_approx=270_000,
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
        children_approx=290_000,
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
        children_approx=110_000,
    ),
)

_LONDON = "020 7946 0"
_MANCHESTER = "0161 496 0"
_LIVERPOOL = "0151 496 0"
_TYNESIDE = "0191 498 0"
_BIRMINGHAM = "0121 496 0"
_SHEFFIELD = "0114 496 0"
_NOTTINGHAM = "0115 496 0"
_LEICESTER = "0116 496 0"
_BRISTOL = "0117 496 0"
_READING = "0118 496 0"
_ANY = FICTIONAL_LANDLINE_PREFIX  # councils with no drama range of their own

# The other 133, in GSS code order: (GSS code, name, DfE LA number, children aged 0-17
# (approximate), id prefix, ODS-ish prefix, landline drama range, postcode districts).
# Reorganised councils, codes and LA numbers as last known (less sure than the rest):
# Bournemouth, Christchurch and Poole E06000058 (LA 839) and Dorset E06000059 (838) since 2019;
# Buckinghamshire E06000060 (825) since 2020; North and West Northamptonshire E06000061/62
# (940/941) since 2021; Cumberland E06000063 (942), Westmorland and Furness E06000064 (943),
# North Yorkshire E06000065 (815) and Somerset E06000066 (933) since 2023.
# fmt: off
_OTHER_COUNCILS: tuple[tuple[str, str, int, int, str, str, str, str], ...] = (
    # London: the City and 32 boroughs (Camden and Hackney above)
    ("E09000001", "City of London", 201, 1_000, "COL", "E87", _LONDON,
     "EC1A EC2M EC2V EC3A EC3V EC4M EC4V"),
    ("E09000002", "Barking and Dagenham", 301, 66_000, "BKD", "F82", _LONDON, "IG11 RM6 RM8-10"),
    ("E09000003", "Barnet", 302, 92_000, "BNT", "E83", _LONDON,
     "N2 N3 N11 N12 N14 N20 NW4 NW7 NW9 NW11 EN4 EN5 HA8"),
    ("E09000004", "Bexley", 303, 57_000, "BXL", "G83", _LONDON, "DA5-8 DA14-18 SE2"),
    ("E09000005", "Brent", 304, 77_000, "BRT", "E84", _LONDON, "NW2 NW6 NW10 HA0 HA3 HA9"),
    ("E09000006", "Bromley", 305, 74_000, "BRM", "G84", _LONDON, "BR1-7 SE20"),
    ("E09000008", "Croydon", 306, 93_000, "CRY", "H85", _LONDON, "CR0 CR2 CR5 CR7 CR8 SE25"),
    ("E09000009", "Ealing", 307, 85_000, "ELG", "E85", _LONDON, "W3 W5 W7 W13 UB1 UB2 UB5 UB6"),
    ("E09000010", "Enfield", 308, 82_000, "ENF", "F85", _LONDON, "EN1-3 N9 N13 N18 N21"),
    ("E09000011", "Greenwich", 203, 66_000, "GRN", "G83", _LONDON,
     "SE2 SE3 SE7 SE9 SE10 SE18 SE28"),
    ("E09000013", "Hammersmith and Fulham", 205, 34_000, "HMF", "E87", _LONDON, "W6 W12 W14 SW6"),
    ("E09000014", "Haringey", 309, 56_000, "HGY", "F85", _LONDON, "N4 N6 N8 N10 N15 N17 N22"),
    ("E09000015", "Harrow", 310, 60_000, "HRW", "E84", _LONDON, "HA1-3 HA5 HA7"),
    ("E09000016", "Havering", 311, 60_000, "HAV", "F82", _LONDON, "RM1-3 RM5 RM7 RM11-14"),
    ("E09000017", "Hillingdon", 312, 73_000, "HIL", "E86", _LONDON, "UB3 UB4 UB7-11 HA4 HA6"),
    ("E09000018", "Hounslow", 313, 67_000, "HNS", "E85", _LONDON, "TW3-5 TW7 TW8 TW13 TW14 W4"),
    ("E09000019", "Islington", 206, 38_000, "ISL", "F83", _LONDON, "N1 N4 N5 N7 N19 EC1V"),
    ("E09000020", "Kensington and Chelsea", 207, 27_000, "KNC", "E87", _LONDON,
     "W8 W10 W11 SW3 SW5 SW7 SW10"),
    ("E09000021", "Kingston upon Thames", 314, 37_000, "KNG", "H84", _LONDON, "KT1-3 KT5 KT6 KT9"),
    ("E09000022", "Lambeth", 208, 56_000, "LBH", "G85", _LONDON,
     "SE1 SE11 SE24 SE27 SW2 SW4 SW8 SW9 SW16"),
    ("E09000023", "Lewisham", 209, 65_000, "LEW", "G85", _LONDON,
     "SE4 SE6 SE8 SE12-14 SE23 SE26"),
    ("E09000024", "Merton", 315, 49_000, "MRT", "H83", _LONDON, "SW19 SW20 CR4 SM4"),
    ("E09000025", "Newham", 316, 87_000, "NWM", "F84", _LONDON, "E6 E7 E12 E13 E15 E16"),
    ("E09000026", "Redbridge", 317, 78_000, "RDB", "F86", _LONDON, "IG1-6 IG8 E11 E18"),
    ("E09000027", "Richmond upon Thames", 318, 44_000, "RCH", "H84", _LONDON,
     "TW1 TW2 TW9-12 SW13 SW14"),
    ("E09000028", "Southwark", 210, 60_000, "SWK", "G85", _LONDON, "SE1 SE5 SE15-17 SE21 SE22"),
    ("E09000029", "Sutton", 319, 50_000, "STN", "H83", _LONDON, "SM1-3 SM5 SM6"),
    ("E09000030", "Tower Hamlets", 211, 68_000, "TWH", "F84", _LONDON, "E1 E1W E2 E3 E14"),
    ("E09000031", "Waltham Forest", 320, 64_000, "WTF", "F86", _LONDON, "E4 E10 E11 E17"),
    ("E09000032", "Wandsworth", 212, 63_000, "WND", "H85", _LONDON,
     "SW11 SW12 SW15 SW17 SW18"),
    ("E09000033", "Westminster", 213, 36_000, "WSM", "E87", _LONDON,
     "W1D W1F W1U W2 W9 NW8 SW1P SW1V"),
    # Metropolitan boroughs (Manchester, Liverpool, Newcastle, Birmingham, Bradford, Leeds and
    # Wakefield above)
    ("E08000001", "Bolton", 350, 70_000, "BLT", "P82", _ANY, "BL1-7"),
    ("E08000002", "Bury", 351, 43_000, "BRY", "P83", _MANCHESTER, "BL0 BL8 BL9 M26 M45"),
    ("E08000004", "Oldham", 353, 62_000, "OLD", "P85", _MANCHESTER, "OL1-4 OL8 OL9"),
    ("E08000005", "Rochdale", 354, 54_000, "RCD", "P86", _ANY, "OL10-12 OL16 M24"),
    ("E08000006", "Salford", 355, 60_000, "SLF", "P87", _MANCHESTER,
     "M3 M5-7 M27 M28 M30 M38 M44"),
    ("E08000007", "Stockport", 356, 64_000, "STK", "P88", _MANCHESTER, "SK1-8"),
    ("E08000008", "Tameside", 357, 51_000, "TMS", "P89", _MANCHESTER, "OL5-7 SK14-16 M34 M43"),
    ("E08000009", "Trafford", 358, 56_000, "TRF", "P91", _MANCHESTER,
     "M16 M17 M31-33 M41 WA14 WA15"),
    ("E08000010", "Wigan", 359, 70_000, "WGN", "P92", _ANY, "WN1-7 M29 M46"),
    ("E08000011", "Knowsley", 340, 35_000, "KNW", "N84", _LIVERPOOL, "L28 L34-36"),
    ("E08000013", "St. Helens", 342, 38_000, "STH", "N84", _ANY, "WA9-12"),
    ("E08000014", "Sefton", 343, 55_000, "SFT", "N82", _LIVERPOOL,
     "L20-23 L30 L31 L37 L38 PR8 PR9"),
    ("E08000015", "Wirral", 344, 67_000, "WRL", "N85", _LIVERPOOL, "CH41-49 CH60-63"),
    ("E08000016", "Barnsley", 370, 52_000, "BNS", "C85", _ANY, "S70-75"),
    ("E08000017", "Doncaster", 371, 67_000, "DNC", "C86", _ANY, "DN1-12"),
    ("E08000018", "Rotherham", 372, 59_000, "ROT", "C87", _ANY, "S60-66"),
    ("E08000019", "Sheffield", 373, 116_000, "SHF", "C88", _SHEFFIELD, "S1-14 S17 S20 S35"),
    ("E08000022", "North Tyneside", 392, 44_000, "NTY", "A85", _TYNESIDE, "NE12 NE25-30"),
    ("E08000023", "South Tyneside", 393, 31_000, "STY", "A88", _TYNESIDE, "NE31-36"),
    ("E08000024", "Sunderland", 394, 56_000, "SND", "A89", _TYNESIDE, "SR1-6 DH4 DH5"),
    ("E08000026", "Coventry", 331, 75_000, "COV", "M81", _ANY, "CV1-6"),
    ("E08000027", "Dudley", 332, 70_000, "DUD", "M87", _ANY, "DY1-3 DY5 DY6 DY8 DY9"),
    ("E08000028", "Sandwell", 333, 87_000, "SAN", "M88", _BIRMINGHAM, "B64-71"),
    ("E08000029", "Solihull", 334, 48_000, "SOL", "M86", _BIRMINGHAM, "B36 B37 B90-94"),
    ("E08000030", "Walsall", 335, 69_000, "WSL", "M89", _ANY, "WS1-9"),
    ("E08000031", "Wolverhampton", 336, 63_000, "WLV", "M92", _ANY,
     "WV1-4 WV6 WV10 WV11 WV14"),
    ("E08000033", "Calderdale", 381, 45_000, "CLD", "B84", _ANY, "HX1-7"),
    ("E08000034", "Kirklees", 382, 100_000, "KRK", "B85", _ANY, "HD1-9 WF12-17"),
    ("E08000037", "Gateshead", 390, 40_000, "GTS", "A87", _TYNESIDE, "NE8-11 NE16 NE21"),
    # Unitary authorities (Leicester, Nottingham, Bristol and Cornwall above)
    ("E06000001", "Hartlepool", 805, 20_000, "HPL", "A81", _ANY, "TS24-27"),
    ("E06000002", "Middlesbrough", 806, 36_000, "MDB", "A81", _ANY, "TS1-5 TS7 TS8"),
    ("E06000003", "Redcar and Cleveland", 807, 28_000, "RCC", "A81", _ANY, "TS6 TS10-14"),
    ("E06000004", "Stockton-on-Tees", 808, 44_000, "STT", "A81", _ANY, "TS15-21"),
    ("E06000005", "Darlington", 841, 23_000, "DRL", "A83", _ANY, "DL1-3"),
    ("E06000006", "Halton", 876, 28_000, "HLT", "N81", _ANY, "WA7 WA8"),
    ("E06000007", "Warrington", 877, 45_000, "WRR", "N81", _ANY, "WA1-5 WA13"),
    ("E06000008", "Blackburn with Darwen", 889, 43_000, "BBD", "P81", _ANY, "BB1-3"),
    ("E06000009", "Blackpool", 890, 29_000, "BPL", "P81", _ANY, "FY1-4"),
    ("E06000010", "Kingston upon Hull, City of", 810, 60_000, "HUL", "B81", _ANY, "HU1-9"),
    ("E06000011", "East Riding of Yorkshire", 811, 63_000, "ERY", "B81", _ANY,
     "HU10-20 YO15 YO16 YO25 YO42 YO43 DN14"),
    ("E06000012", "North East Lincolnshire", 812, 34_000, "NEL", "B81", _ANY, "DN31-37"),
    ("E06000013", "North Lincolnshire", 813, 35_000, "NLN", "B81", _ANY, "DN15-20"),
    ("E06000014", "York", 816, 36_000, "YRK", "B82", _ANY,
     "YO1 YO10 YO19 YO23 YO24 YO26 YO30-32"),
    ("E06000015", "Derby", 831, 59_000, "DBY", "C81", _ANY, "DE1 DE3 DE21-24"),
    ("E06000017", "Rutland", 857, 8_000, "RUT", "C82", _ANY, "LE15"),
    ("E06000019", "Herefordshire, County of", 884, 36_000, "HFD", "M81", _ANY, "HR1-9"),
    ("E06000020", "Telford and Wrekin", 894, 43_000, "TLF", "M83", _ANY, "TF1-7"),
    ("E06000021", "Stoke-on-Trent", 861, 58_000, "SOT", "M83", _ANY, "ST1-4 ST6"),
    ("E06000022", "Bath and North East Somerset", 800, 38_000, "BNE", "L81", _ANY,
     "BA1-3 BS31 BS39"),
    ("E06000024", "North Somerset", 802, 45_000, "NSM", "L81", _BRISTOL,
     "BS20-25 BS29 BS40 BS48 BS49"),
    ("E06000025", "South Gloucestershire", 803, 64_000, "SGL", "L81", _BRISTOL,
     "BS15 BS16 BS30 BS32 BS34-37"),
    ("E06000026", "Plymouth", 879, 53_000, "PLY", "L83", _ANY, "PL1-7 PL9"),
    ("E06000027", "Torbay", 880, 26_000, "TOR", "L83", _ANY, "TQ1-5"),
    ("E06000030", "Swindon", 866, 53_000, "SWI", "J83", _ANY, "SN1-6 SN25 SN26"),
    ("E06000031", "Peterborough", 874, 54_000, "PBO", "D81", _ANY, "PE1-4 PE6 PE7"),
    ("E06000032", "Luton", 821, 59_000, "LUT", "E81", _ANY, "LU1-4"),
    ("E06000033", "Southend-on-Sea", 882, 40_000, "SOS", "F81", _ANY, "SS0-3 SS9"),
    ("E06000034", "Thurrock", 883, 45_000, "THR", "F81", _ANY, "RM15-20 SS17"),
    ("E06000035", "Medway", 887, 65_000, "MDW", "G82", _ANY, "ME1-5 ME7 ME8"),
    ("E06000036", "Bracknell Forest", 867, 29_000, "BRF", "K81", _READING,
     "RG12 RG42 RG45 GU47"),
    ("E06000037", "West Berkshire", 869, 36_000, "WBK", "K81", _ANY, "RG7 RG14 RG17-20"),
    ("E06000038", "Reading", 870, 39_000, "RDG", "K81", _READING, "RG1 RG2 RG4 RG30 RG31"),
    ("E06000039", "Slough", 871, 44_000, "SLG", "K81", _ANY, "SL1-3"),
    ("E06000040", "Windsor and Maidenhead", 868, 35_000, "WAM", "K81", _ANY, "SL4 SL6"),
    ("E06000041", "Wokingham", 872, 42_000, "WOK", "K81", _READING, "RG5 RG6 RG10 RG40 RG41"),
    ("E06000042", "Milton Keynes", 826, 69_000, "MKY", "K82", _ANY, "MK1-15 MK17 MK19"),
    ("E06000043", "Brighton and Hove", 846, 50_000, "BNH", "G81", _ANY, "BN1-3 BN41"),
    ("E06000044", "Portsmouth", 851, 42_000, "PTS", "J82", _ANY, "PO1-6"),
    ("E06000045", "Southampton", 852, 52_000, "SOU", "J82", _ANY, "SO14-19"),
    ("E06000046", "Isle of Wight", 921, 25_000, "IOW", "J82", _ANY, "PO30-41"),
    ("E06000047", "County Durham", 840, 105_000, "DUR", "A83", _TYNESIDE,
     "DH1-3 DH6-9 DL4 DL5 DL12-17 SR7 SR8 TS28 TS29"),
    ("E06000049", "Cheshire East", 895, 80_000, "CHE", "N81", _ANY,
     "CW1-5 CW11 CW12 SK9-12 ST7"),
    ("E06000050", "Cheshire West and Chester", 896, 72_000, "CHW", "N81", _ANY,
     "CH1-4 CH64-66 CW6-10 WA6"),
    ("E06000051", "Shropshire", 893, 62_000, "SHR", "M91", _ANY, "SY1-13 TF9 WV16"),
    ("E06000053", "Isles of Scilly", 420, 400, "IOS", "L82", _ANY, "TR21-25"),
    ("E06000054", "Wiltshire", 865, 110_000, "WIL", "J81", _ANY, "SN8-16 SP1-5 BA12-15"),
    ("E06000055", "Bedford", 822, 43_000, "BED", "E81", _ANY, "MK40-46"),
    ("E06000056", "Central Bedfordshire", 823, 67_000, "CBD", "E81", _ANY,
     "LU5-7 SG5 SG15-19"),
    ("E06000057", "Northumberland", 929, 62_000, "NLD", "A84", _ANY,
     "NE22-24 NE41-49 NE61-71 TD15"),
    ("E06000058", "Bournemouth, Christchurch and Poole", 839, 75_000, "BCP", "J81", _ANY,
     "BH1-15 BH17 BH23"),
    ("E06000059", "Dorset", 838, 68_000, "DOR", "J81", _ANY,
     "DT1-11 BH16 BH18-21 BH31 SP7 SP8"),
    ("E06000060", "Buckinghamshire", 825, 128_000, "BUC", "K82", _ANY,
     "HP5-22 SL0 SL7-9 MK16 MK18"),
    ("E06000061", "North Northamptonshire", 940, 82_000, "NNP", "K83", _ANY,
     "NN8-10 NN14-18 NN29"),
    ("E06000062", "West Northamptonshire", 941, 95_000, "WNP", "K83", _ANY, "NN1-7 NN11-13"),
    ("E06000063", "Cumberland", 942, 54_000, "CMB", "A82", _ANY, "CA1-9 CA12-15 CA18-28"),
    ("E06000064", "Westmorland and Furness", 943, 42_000, "WMF", "A82", _ANY,
     "LA8-23 CA10 CA11 CA16 CA17"),
    ("E06000065", "North Yorkshire", 815, 118_000, "NYK", "B82", _ANY,
     "HG1-5 YO7 YO8 YO11-14 YO17 YO18 YO21 YO22 YO51 YO60-62 BD23 BD24 DL6-11 TS9"),
    ("E06000066", "Somerset", 933, 113_000, "SOM", "L85", _ANY, "TA1-24 BA4-11 BS26-28"),
    # Counties (Devon, Essex, Hampshire, Kent, Lancashire, Norfolk and Surrey above)
    ("E10000003", "Cambridgeshire", 873, 145_000, "CAM", "D81", _ANY,
     "CB1-11 CB21-25 PE13-16 PE19 PE26-29"),
    ("E10000007", "Derbyshire", 830, 160_000, "DBS", "C81", _ANY,
     "DE4-7 DE11 DE55 DE56 DE65 DE72-75 S18 S40-45 SK13 SK17 SK22 SK23"),
    ("E10000011", "East Sussex", 845, 106_000, "ESS", "G81", _ANY,
     "BN7-10 BN20-27 TN6 TN7 TN19-22 TN31-40"),
    ("E10000013", "Gloucestershire", 916, 135_000, "GLO", "L84", _ANY, "GL1-20 GL50-56"),
    ("E10000015", "Hertfordshire", 919, 275_000, "HRT", "E82", _ANY,
     "AL1-10 SG1-14 WD3-7 WD17-25 EN6-11 HP1-4 CM21-23"),
    ("E10000018", "Leicestershire", 855, 145_000, "LCS", "C82", _LEICESTER,
     "LE6-14 LE16-19 LE65 LE67"),
    ("E10000019", "Lincolnshire", 925, 150_000, "LIN", "C83", _ANY,
     "LN1-13 PE10-12 PE20-25 NG31-34 DN21"),
    ("E10000024", "Nottinghamshire", 891, 170_000, "NTS", "C84", _NOTTINGHAM,
     "NG9-25 S80 S81 DN22"),
    ("E10000025", "Oxfordshire", 931, 150_000, "OXF", "K84", _ANY,
     "OX1-18 OX20 OX25-29 OX33 OX39 OX44 OX49 RG9"),
    ("E10000028", "Staffordshire", 860, 178_000, "STF", "M82", _ANY,
     "ST5 ST8-21 WS11-15 DE13-15 B77-79"),
    ("E10000029", "Suffolk", 935, 155_000, "SUF", "D83", _ANY, "IP1-33 CB8 CB9 NR32-35"),
    ("E10000031", "Warwickshire", 937, 125_000, "WAR", "M81", _ANY,
     "CV7-12 CV21-23 CV31-37 B46 B49 B50 B80"),
    ("E10000032", "West Sussex", 938, 180_000, "WSX", "H82", _ANY,
     "RH10-20 BN5 BN6 BN11-18 BN43 BN44 PO18-22 GU27-29"),
    ("E10000034", "Worcestershire", 885, 122_000, "WOR", "M84", _ANY,
     "WR1-15 DY10-14 B60 B61 B96-98"),
)
# fmt: on


def _other_council(row: tuple[str, str, int, int, str, str, str, str]) -> Council:
    code, name, la_number, children, id_prefix, ods_prefix, landline, spec = row
    districts = _expand(spec)
    return Council(
        gss_code=code,
        name=name,
        dfe_la_number=la_number,
        postcode_areas=tuple(dict.fromkeys(_area(d) for d in districts)),
        postcode_districts=districts,
        ods_prefixes=(ods_prefix,),
        landline_prefix=landline,
        id_prefix=id_prefix,
        children_approx=children,
    )


# Every upper-tier council: the 20 demo councils first (their positions seed their draws, so
# they keep them), then the rest.
COUNCILS: tuple[Council, ...] = DEMO_COUNCILS + tuple(_other_council(r) for r in _OTHER_COUNCILS)


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
