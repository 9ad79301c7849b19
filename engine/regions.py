"""Region codes as the Snapshot API uses them: ISO 3166-1 alpha-2 lowercase (``gb`` for the
UK), optionally with a state (``us-ca``, ``br-sp``), and the OCR model's region labels."""

from __future__ import annotations

__all__ = [
    "COUNTRY_CODES", "STATE_CODES", "OCR_REGION_CODES", "is_valid_region", "normalize_region",
]

COUNTRY_CODES = frozenset(
    """ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bl bm bn bo bq
    br bs bt bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do
    dz ec ee eg eh er es et fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu
    gw gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw
    ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mf mg mh mk ml mm mn mo mp mq mr ms mt mu
    mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw
    py qa re ro rs ru rw sa sb sc sd se sg sh si sj sk sl sm sn so sr ss st sv sx sy sz tc td tf
    tg th tj tk tl tm tn to tr tt tv tw tz ua ug um us uy uz va vc ve vg vi vn vu wf ws xk ye yt
    za zm zw""".split()
)

STATE_CODES: dict[str, frozenset[str]] = {
    "us": frozenset(
        """al ak az ar ca co ct de dc fl ga hi id il in ia ks ky la me md ma mi mn ms mo mt ne nv
        nh nj nm ny nc nd oh ok or pa ri sc sd tn tx ut vt va wa wv wi wy pr gu vi as mp""".split()
    ),
    "br": frozenset(
        "ac al ap am ba ce df es go ma mt ms mg pa pb pr pe pi rj rn rs ro rr sc sp se to".split()
    ),
    "ca": frozenset("ab bc mb nb nl ns nt nu on pe qc sk yt".split()),
    "au": frozenset("act nsw nt qld sa tas vic wa".split()),
    "mx": frozenset(
        """agu bcn bcs cam chp chh cmx coa col dur gua gro hid jal mex mic mor nay nle oax pue que
        roo slp sin son tab tam tla ver yuc zac""".split()
    ),
    # The rest as Plate Recognizer's region list documents them (its "Countries" page).
    "th": frozenset(
        """10 10b 10c 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 30 31 32 33 34 35 36 37
        38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 67
        70 71 72 73 74 75 76 77 80 81 82 83 84 85 86 90 91 92 93 94 95 96 99""".split()
    ),
    "ae": frozenset("az aj du fu rk sh uq".split()),
    "pe": frozenset(
        """ama anc apu are aya caj cus huv huc ica jun lal lam lim lor mdd moq pas piu pun sam tac
        tum uca""".split()
    ),
    "eg": frozenset(
        """dk ba bh fym gh alx is gz mnf mn c kb lx wad suz shr asn ast bns pts dt js kfs mt kn
        sin shg""".split()
    ),
    "jp": frozenset(
        """aci ack acn act acm acz acy ata ama amh cbc cbt cbn cbd cbk cbs eh fi fof for fs fsa gfg
        gf gfh gmg gm gmm gmt hsf hsh aka hdh kik krk mrm oho sps hgh igm igt iki ikk iti ith itm
        kak kok koa kns knk kny kuk mem mes mgm mg mgs mz nnm nns nnn nn ns nss nrn nr ngo ngn ng
        oyo oy oyk ono osz oss sas stb sty stk stw stt stg sis sn szh szn szi szs tgu tgn tst tka
        tkt tkn tkm tkg ttt tyt wkw ya yuy yus yn ynf tkh aco foc fok fsi fsk hgk igk knn kck ktk
        ot oso osn sto tck tks yas yoi lsc oit sc sht shm sna sbr""".split()
    ),
}

# Codes Plate Recognizer documents that are not ISO 3166 (its list says "cb" for Cambodia).
ALIASES = {"uk": "gb", "cb": "kh"}

# The OCR model's region labels (its YAML `plate_regions`) -> Snapshot region codes.
OCR_REGION_CODES: dict[str, str] = {
    "Albania": "al", "Andorra": "ad", "Argentina": "ar", "Armenia": "am", "Australia": "au",
    "Austria": "at", "Azerbaijan": "az", "Bahrain": "bh", "Belarus": "by", "Belgium": "be",
    "Bosnia and Herzegovina": "ba", "Brazil": "br", "Bulgaria": "bg", "Cambodia": "kh",
    "Canada": "ca", "Croatia": "hr", "Cyprus": "cy", "Czech Republic": "cz", "Denmark": "dk",
    "Estonia": "ee", "Finland": "fi", "France": "fr", "Georgia": "ge", "Germany": "de",
    "Gibraltar": "gi", "Greece": "gr", "Guernsey": "gg", "Hungary": "hu", "Iceland": "is",
    "Indonesia": "id", "Ireland": "ie", "Israel": "il", "Italy": "it", "Latvia": "lv",
    "Liechtenstein": "li", "Lithuania": "lt", "Luxembourg": "lu", "Malaysia": "my",
    "Malta": "mt", "Mexico": "mx", "Moldova": "md", "Monaco": "mc", "Montenegro": "me",
    "Netherlands": "nl", "New Zealand": "nz", "North Macedonia": "mk", "Norway": "no",
    "Poland": "pl", "Portugal": "pt", "Qatar": "qa", "Romania": "ro", "San Marino": "sm",
    "Serbia": "rs", "Singapore": "sg", "Slovakia": "sk", "Slovenia": "si", "Spain": "es",
    "Sweden": "se", "Switzerland": "ch", "Thailand": "th", "Turkey": "tr",
    "United States": "us", "Ukraine": "ua", "United Kingdom": "gb", "Vietnam": "vn",
    "Unknown": "",
}


def normalize_region(code: str) -> str:
    """``'US-CA '`` -> ``'us-ca'``; ``'uk'`` -> ``'gb'``, ``'cb'`` -> ``'kh'`` (aliases)."""
    code = code.strip().lower().replace("_", "-")
    country, sep, state = code.partition("-")
    return ALIASES.get(country, country) + sep + state


def is_valid_region(code: str) -> bool:
    country, _, state = normalize_region(code).partition("-")
    if country not in COUNTRY_CODES:
        return False
    return not state or state in STATE_CODES.get(country, frozenset())
