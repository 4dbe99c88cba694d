"""Likely secrets in training text (API keys, private keys, tokens): they must never be uploaded.

Kinds only: the matched value is never returned, so it cannot end up in a report or a log.
"""

from __future__ import annotations

import re

_B = r"(?<![A-Za-z0-9_\-])"  # token boundary: a key does not start in the middle of a word
_SECRET_PATTERNS = {
    "anthropic_api_key": _B + r"sk-ant-[A-Za-z0-9_\-]{20,}",
    "openai_api_key": _B + r"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|[A-Za-z0-9]{32,})",
    "stripe_secret_key": _B + r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",
    "aws_access_key_id": r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])",
    "private_key": r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
    "github_token": _B + r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
    "google_api_key": _B + r"AIza[0-9A-Za-z_\-]{35}",
    "slack_token": _B + r"xox[abpr]-[A-Za-z0-9\-]{10,}",
    "jwt": _B + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
}
_SECRETS = re.compile("|".join(f"(?P<{k}>{v})" for k, v in _SECRET_PATTERNS.items()))
# Cheap gates: plain substring tests (memchr-fast) first, then the prefix regex, then the full pattern only at
# the prefix hits. Almost all training text stops at the first gate.
_PREFILTER = re.compile(r"sk-|[sr]k_|A[KSBC][IC]A|-----BEGIN|gh[pousr]_|github_pat_|AIza|xox[abpr]-|eyJ")
SECRET_NAMES = {
    "anthropic_api_key": "an Anthropic API key", "openai_api_key": "an OpenAI API key",
    "stripe_secret_key": "a Stripe secret key", "aws_access_key_id": "an AWS access key id",
    "private_key": "a private key block", "github_token": "a GitHub token", "google_api_key": "a Google API key",
    "slack_token": "a Slack token", "jwt": "a JSON Web Token",
}


_PLAIN_GATES = ("sk-", "IA", "CCA", "-----BEGIN", "AIza", "xox", "eyJ")  # AKIA/ASIA/ABIA share "IA"
_UNDERSCORE_GATES = ("k_live_", "k_test_", "gh", "github_pat_")  # only looked at when the text has a "_"


def _may_hold_secret(text: str) -> bool:
    """A few substring tests (C speed) that every secret pattern implies; 3x cheaper than testing every
    literal prefix, and most training text fails them all."""
    if any(g in text for g in _PLAIN_GATES):
        return True
    return "_" in text and any(g in text for g in _UNDERSCORE_GATES)


def find_secrets(text: str) -> list[str]:
    """Names of likely secrets in text (API keys, private keys, tokens): they must never be uploaded.

    Kinds only, sorted: the matched value itself is never returned, so it cannot end up in a report.
    """
    if not text or not _may_hold_secret(text):
        return []
    kinds = set()
    for hit in _PREFILTER.finditer(text):  # every pattern starts with a prefilter hit: try the full one only there
        m = _SECRETS.match(text, hit.start())
        if m and m.lastgroup:
            kinds.add(m.lastgroup)
    return sorted(kinds)


