"""The words every service shares: report categories, the reporter's relationship, a case's
states and the coded reasons a case ends with, each with its Indonesian and English label.

One table, imported by intake (the reporter's form and status page), verification (the
console, the API, routing) and anything else that shows a category or a state, so a label is
changed in one place and staff and reporters never see two names for one thing. The vocabulary
is described in docs/domain.md; labels are ``{"id": ..., "en": ...}``.
"""
from __future__ import annotations

LANGUAGES = ("id", "en")

#: What can be reported (docs/domain.md, "What can be reported").
CATEGORIES: dict[str, dict[str, str]] = {
    "corruption": {"id": "Korupsi", "en": "Corruption"},
    "bribery": {
        "id": "Suap / gratifikasi / pemerasan / pungutan liar",
        "en": "Bribery, gratuities, extortion, illegal levies",
    },
    "collusion": {"id": "Kolusi", "en": "Collusion"},
    "nepotism": {"id": "Nepotisme", "en": "Nepotism"},
    "conflict_of_interest": {"id": "Benturan kepentingan", "en": "Conflict of interest"},
    "abuse_of_authority": {"id": "Penyalahgunaan wewenang / jabatan", "en": "Abuse of authority"},
    "procurement": {"id": "Penyimpangan pengadaan barang/jasa", "en": "Procurement irregularities"},
    "fraud": {
        "id": "Penggelapan / kecurangan aset negara",
        "en": "Embezzlement, fraud, theft of state assets",
    },
    "discipline": {"id": "Pelanggaran disiplin pegawai", "en": "Breach of civil-service discipline"},
    "ethics": {"id": "Pelanggaran kode etik", "en": "Breach of the code of ethics"},
    "harassment": {"id": "Diskriminasi / pelecehan", "en": "Discrimination, harassment"},
    "other": {"id": "Pelanggaran peraturan lainnya", "en": "Other breach of regulations"},
}

#: How the reporter relates to the reported unit (``reporter.relationship``).
RELATIONSHIPS: dict[str, dict[str, str]] = {
    "employee": {"id": "Pegawai (ASN / non-ASN)", "en": "Employee"},
    "official": {"id": "Pejabat", "en": "Official"},
    "public": {"id": "Masyarakat", "en": "Member of the public"},
    "vendor": {"id": "Penyedia barang/jasa", "en": "Vendor"},
    "other": {"id": "Lainnya", "en": "Other"},
}

# -- a case's life (docs/domain.md, "A case's life") ---------------------------------------

RECEIVED = "received"
VERIFICATION = "verification"
AWAITING_REPORTER = "awaiting_reporter"
ANALYSIS = "analysis"
INVESTIGATION = "investigation"
FOLLOW_UP = "follow_up"
REFERRED = "referred"
NOT_ACTIONABLE = "not_actionable"
CLOSED = "closed"

#: Each state's label for staff (console, API) and for the reporter (status page); the
#: reporter's wording is gentler and never hints at who handles the case.
STATE_LABELS: dict[str, dict[str, dict[str, str]]] = {
    RECEIVED: {"staff": {"id": "Diterima", "en": "Received"},
               "reporter": {"id": "Laporan diterima", "en": "Report received"}},
    VERIFICATION: {"staff": {"id": "Verifikasi", "en": "Verification"},
                   "reporter": {"id": "Dalam verifikasi", "en": "Under verification"}},
    AWAITING_REPORTER: {"staff": {"id": "Menunggu pelapor", "en": "Awaiting reporter"},
                        "reporter": {"id": "Mohon lengkapi informasi", "en": "Please add information"}},
    ANALYSIS: {"staff": {"id": "Penelaahan", "en": "Analysis"},
               "reporter": {"id": "Dalam penelaahan", "en": "Under review"}},
    INVESTIGATION: {"staff": {"id": "Investigasi", "en": "Investigation"},
                    "reporter": {"id": "Dalam proses investigasi", "en": "Under investigation"}},
    FOLLOW_UP: {"staff": {"id": "Tindak lanjut", "en": "Follow-up"},
                "reporter": {"id": "Sedang ditindaklanjuti", "en": "Being acted upon"}},
    REFERRED: {"staff": {"id": "Diteruskan", "en": "Referred"},
               "reporter": {"id": "Diteruskan ke instansi berwenang",
                            "en": "Referred to the competent authority"}},
    NOT_ACTIONABLE: {"staff": {"id": "Tidak dapat ditindaklanjuti", "en": "Not actionable"},
                     "reporter": {"id": "Tidak dapat ditindaklanjuti", "en": "Cannot be followed up"}},
    CLOSED: {"staff": {"id": "Selesai", "en": "Closed"},
             "reporter": {"id": "Selesai", "en": "Completed"}},
}

STATES: tuple[str, ...] = tuple(STATE_LABELS)
INITIAL_STATE = RECEIVED
TERMINAL_STATES = frozenset({REFERRED, NOT_ACTIONABLE, CLOSED})

#: Coded reasons of the end states.
NOT_ACTIONABLE_REASONS: dict[str, dict[str, str]] = {
    "incomplete": {"id": "Tidak lengkap setelah pengingat", "en": "Incomplete after reminders"},
    "not_a_violation": {"id": "Bukan pelanggaran", "en": "Not a violation"},
    "duplicate": {"id": "Duplikat", "en": "Duplicate"},
    "spam": {"id": "Spam / tidak bermakna", "en": "Spam"},
    "bad_faith": {"id": "Itikad tidak baik", "en": "Bad faith"},
    "no_answer": {"id": "Pelapor tidak menjawab", "en": "No answer from the reporter"},
}
AUTHORITIES: dict[str, dict[str, str]] = {
    "kpk": {"id": "Komisi Pemberantasan Korupsi (KPK)", "en": "Corruption Eradication Commission (KPK)"},
    "police": {"id": "Kepolisian (Polri)", "en": "Police"},
    "prosecutor": {"id": "Kejaksaan", "en": "Public prosecutor"},
    "ombudsman": {"id": "Ombudsman RI", "en": "Ombudsman"},
    "bpk": {"id": "Badan Pemeriksa Keuangan (BPK)", "en": "Audit Board (BPK)"},
    "other_ministry": {"id": "Kementerian/lembaga lain", "en": "Another ministry or agency"},
    "other": {"id": "Instansi lain", "en": "Other authority"},
}
OUTCOMES: dict[str, dict[str, str]] = {
    "proven": {"id": "Terbukti", "en": "Proven"},
    "partly_proven": {"id": "Terbukti sebagian", "en": "Partly proven"},
    "not_proven": {"id": "Tidak terbukti", "en": "Not proven"},
}
#: Which coded reason each end state carries.
END_REASONS: dict[str, dict[str, dict[str, str]]] = {
    NOT_ACTIONABLE: NOT_ACTIONABLE_REASONS,
    REFERRED: AUTHORITIES,
    CLOSED: OUTCOMES,
}


def label(labels: dict[str, str], language: str) -> str:
    """The label in ``language``; Indonesian, the system's default language, otherwise."""
    return labels.get(language) or labels["id"]


def category_label(code: str, language: str = "id") -> str:
    return label(CATEGORIES[code], language)


def reporter_state_label(state: str, language: str = "id") -> str:
    return label(STATE_LABELS[state]["reporter"], language)


def staff_state_label(state: str, language: str = "id") -> str:
    return label(STATE_LABELS[state]["staff"], language)
