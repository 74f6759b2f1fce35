"""Intake's use cases, by what the reporter is doing; the entrypoints call them as `domain.*`.

* :mod:`intake.pow_gate`: the proof of work in front of costly requests (issue, check, spend);
* :mod:`intake.submission`: submitting a report with its evidence, adding evidence later;
* :mod:`intake.followup`: signing in with the receipt, the follow-up view, answering the
  inspector, signing out, forgetting a shredded report.

Each takes its collaborators as arguments and never commits (the service's `transaction`
factory does), and none knows HTTP: `intake.forms` maps requests to their arguments and
`intake.errors` maps their errors to status codes.
"""

from intake.followup import (  # noqa: F401 -- the use cases, re-exported for the entrypoints
    MAX_MESSAGE_BYTES,
    MAX_MESSAGE_CHARS,
    close_reporter_session,
    evidence_budget,
    follow_up,
    forget_report,
    no_budget,
    open_reporter_session,
    post_reporter_message,
    report_for_token,
    reporter_language,
    reporter_view,
    token_hash,
    validate_message,
)
from intake.pow_gate import issue_pow, require_pow, spend_pow  # noqa: F401
from intake.submission import (EvidenceUploader, add_evidence, record_report, retry_discards,  # noqa: F401
                               submit_report)
from intake.uploads import UploadTooLarge  # noqa: F401 -- the error evidence_budget raises
