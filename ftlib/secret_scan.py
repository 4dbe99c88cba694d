"""Likely secrets in training text (API keys, passwords, tokens, private keys): they must never be uploaded.

Kinds only: the matched value is never returned, so it cannot end up in a report, a log or an exception.

The ruleset: detect-secrets' plugin denylists (Yelp/detect-secrets, Apache-2.0, imported from the installed
package so its maintained patterns are used as released) plus ftlib's own rules for what those plugins miss or only
catch in one file syntax (modern OpenAI/Anthropic keys, Hugging Face, bare npm tokens, AWS secret access keys
without quotes, passwords and API keys assigned in text, Google API keys, fine-grained GitHub tokens).

Speed: training text is almost always clean, so the clean path must be cheap. Every rule belongs to a group with
one *anchor* character that all of its matches contain (``-``, ``_``, ``=``, ``:``, ``A``, ``J``, ``G``); an
anchor test is a memchr (~60 ns per KB). Only when the anchor is present does the group's *locator* run: one regex
that starts with the anchor literal (so the regex engine skips to each occurrence) and checks the few characters
around it. Only a locator hit pays for the full rules. Text that is not ASCII is first normalised (NFKC, zero-width
characters removed, Unicode dashes made ``-``) so that ``sk‐proj-…`` or a zero-width space inside a key is no
disguise.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

SECRET_NAMES = {
    "anthropic_api_key": "an Anthropic API key", "openai_api_key": "an OpenAI API key",
    "stripe_secret_key": "a Stripe secret key", "aws_access_key_id": "an AWS access key id",
    "aws_secret_access_key": "an AWS secret access key", "private_key": "a private key block",
    "github_token": "a GitHub token", "gitlab_token": "a GitLab token", "google_api_key": "a Google API key",
    "slack_token": "a Slack token or webhook", "jwt": "a JSON Web Token", "huggingface_token": "a Hugging Face token",
    "npm_token": "an npm token", "pypi_token": "a PyPI token", "sendgrid_api_key": "a SendGrid API key",
    "azure_storage_key": "an Azure storage account key", "url_password": "a password inside a URL",
    "password_assignment": "a password or API key assigned in text", "square_token": "a Square OAuth secret",
    "mailchimp_api_key": "a Mailchimp API key",
}

_B = r"(?<![A-Za-z0-9_\-])"  # token boundary: a key does not start in the middle of a word
_E = r"(?![A-Za-z0-9_\-])"  # and does not end in the middle of one

# Placeholders people write instead of a secret: never flagged (the fix we suggest is one of them).
_PLACEHOLDER_START = ("<", "$", "{", "%(", "[", "(", "*", "•", "…", "...")
_PLACEHOLDERS = frozenset({
    "password", "passwd", "secret", "changeme", "change_me", "example", "redacted", "none", "null", "true", "false",
    "your_password", "yourpassword", "mypassword", "your-password", "token", "apikey", "api_key",
    "xxxx", "undefined", "empty", "hidden", "masked", "placeholder", "todo",
})
_PLACEHOLDER_WORDS = ("example", "placeholder", "redacted", "your_", "your-", "<", "xxxx", "****")


def _real_value(value: str) -> bool:
    """False for a placeholder (``<REDACTED>``, ``${DB_PASSWORD}``, ``****``, ``your_password``), True otherwise."""
    v = value.strip("\"'` ")
    low = v.lower()
    if len(v) < 4 or v.startswith(_PLACEHOLDER_START) or low in _PLACEHOLDERS:
        return False
    if set(low) <= set("x*.•-_0"):
        return False
    return not any(w in low for w in _PLACEHOLDER_WORDS)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_VARIABLE_WORDS = ("pass", "pwd", "secret", "token", "key", "cred", "self.", "env", "config", "settings", "args")


def _value_ok(m: re.Match[str]) -> bool:
    """A real value, not a placeholder; unquoted, it must not read as code (``password=user_password``,
    ``password=os.environ``): an identifier without digits, or one naming a credential, is a variable."""
    value = m.group("value")
    if not _real_value(value):
        return False
    if m.groupdict().get("q"):
        return True
    low = value.lower()
    ident = _IDENTIFIER.fullmatch(value) is not None
    return not (ident and (not any(c.isdigit() for c in value) or any(w in low for w in _VARIABLE_WORDS)))


def _basic_auth_ok(m: re.Match[str]) -> bool:
    return _real_value(m.group(1))


def _jwt_ok(m: re.Match[str]) -> bool:
    from detect_secrets.plugins.jwt import JwtTokenDetector

    token = m.group(0)
    return token.count(".") >= 2 and JwtTokenDetector.is_formally_valid(token)


@dataclass(frozen=True)
class Rule:
    kind: str
    pattern: re.Pattern[str]
    source: str  # where the pattern comes from (attribution)
    valid: Callable[[re.Match[str]], bool] | None = None  # a check on the match (placeholder, JWT decodes, ...)


@dataclass(frozen=True)
class Group:
    anchor: str  # one character every match of every rule of the group contains: a memchr-fast gate
    locator: re.Pattern[str]  # starts with the anchor literal; a hit means one of the rules may match here
    rules: tuple[Rule, ...]


@cache
def _plugins() -> dict[str, type]:
    """detect-secrets' plugin classes by class name, from its own registry (imported on first locator hit)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    return {c.__name__: c for c in get_mapping_from_secret_type_to_class().values()}


def _ds(cls: str, index: int) -> re.Pattern[str]:
    """One pattern of a detect-secrets plugin's denylist."""
    return _plugins()[cls].denylist[index]


# Keyword tails of assignment rules ("password=", "api_key: '...'"), for the '=' and ':' locators: one fixed-width
# alternation per lookbehind, so the locator costs a few checks per '=' or ':' even in code-heavy text.
_TAILS = "(?:ord|swd|pwd|ret|key|ken)"
_ASSIGN_KEYS = (r"(?:pass(?:word|wd|phrase)?|pwd|secret(?:_?key)?|client_?secret|api_?key|apikey|access_?token|"
                r"auth_?token|private_?key|token)")


def _lookbehinds(suffixes: tuple[str, ...], anchor: str) -> str:
    """Lookbehinds (after the anchor was consumed): a keyword tail, then one of the suffixes, then the anchor."""
    return "|".join(f"(?<={_TAILS}{s}{re.escape(anchor)})" for s in suffixes)


@cache
def groups() -> tuple[Group, ...]:
    """The ruleset, built on first use (detect-secrets is imported only when a locator hits)."""
    ds = "detect-secrets 1.5 "
    own = "ftlib"

    def rule(kind: str, pattern: str | Callable[[], re.Pattern[str]], source: str,
             valid: Callable[[re.Match[str]], bool] | None = None, flags: int = 0) -> Rule:
        return Rule(kind, _Lazy(pattern, flags), source, valid)  # type: ignore[arg-type]

    dash = Group("-", re.compile(
        r"-(?:(?<=sk-)|(?<=pypi-)|(?<=sq0csp-)|(?<=PuTTY-)|(?=----BEGIN)|(?=us\d)|(?<=[Xx][Oo][Xx][aboprsABOPRS]-)|"
        + "|".join(f"(?<={p}-)" for p in ("glpat", "gldt", "glft", "glsoat", "glrt", "glcbt", "glimt", "glptt",
                                          "glagent", "gloas")) + ")"), (
        rule("anthropic_api_key", _B + r"sk-ant-[A-Za-z0-9_\-]{20,}", own),
        rule("openai_api_key", _B + r"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|[A-Za-z0-9]{32,})", own),
        rule("openai_api_key", lambda: _ds("OpenAIDetector", 0), ds + "OpenAIDetector"),
        rule("private_key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----", own),
        *(rule("private_key", (lambda i=i: _ds("PrivateKeyDetector", i)), ds + "PrivateKeyDetector")
          for i in range(8)),
        *(rule("gitlab_token", (lambda i=i: _ds("GitLabTokenDetector", i)), ds + "GitLabTokenDetector")
          for i in (0, 2, 3, 4, 5, 6)),
        rule("slack_token", lambda: _ds("SlackDetector", 0), ds + "SlackDetector"),
        rule("slack_token", _B + r"xox[abprs]-[A-Za-z0-9\-]{10,}", own),
        rule("pypi_token", lambda: _ds("PypiTokenDetector", 0), ds + "PypiTokenDetector"),
        rule("pypi_token", lambda: _ds("PypiTokenDetector", 1), ds + "PypiTokenDetector"),
        rule("square_token", lambda: _ds("SquareOAuthDetector", 0), ds + "SquareOAuthDetector"),
        rule("mailchimp_api_key", lambda: _ds("MailchimpDetector", 0), ds + "MailchimpDetector"),
    ))
    underscore = Group("_", re.compile(
        r"_(?:(?<=\bhf_)|(?<=\bnpm_)|(?<=\bgh[pousr]_)|(?<=\bgithub_)|(?<=\b[sr]k_)(?=live_|test_)|(?=authToken))"), (
        rule("huggingface_token", _B + r"hf_[A-Za-z0-9]{30,}" + _E, own),
        rule("npm_token", _B + r"npm_[A-Za-z0-9]{36}" + _E, own),
        rule("npm_token", lambda: _ds("NpmDetector", 0), ds + "NpmDetector"),
        rule("github_token", lambda: _ds("GitHubTokenDetector", 0), ds + "GitHubTokenDetector"),
        rule("github_token", _B + r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})", own),
        rule("stripe_secret_key", lambda: _ds("StripeDetector", 0), ds + "StripeDetector"),
        rule("stripe_secret_key", _B + r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}", own),
    ))
    value = r"""(?P<q>["'`]?)(?P<value>[^\s"'`,;&<>()\[\]{}]{4,})"""
    aws_secret = rule("aws_secret_access_key", r"(?i)(?<![A-Za-z0-9])(?:aws_?)?secret_?access_?key[\"']?\s*[=:]\s*"
                      r"[\"']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])", own)
    equals = Group("=", re.compile(r"=(?i:" + _lookbehinds(("", "[\"' ]", "[\"'] "), "=") + ")"), (
        rule("azure_storage_key", lambda: _ds("AzureStorageKeyDetector", 0),
             ds + "AzureStorageKeyDetector"),
        rule("azure_storage_key", r"SharedAccessKey=[A-Za-z0-9+/]{40,}={0,2}", own),
        aws_secret,
        rule("password_assignment", r"(?i)(?<![A-Za-z0-9])" + _ASSIGN_KEYS + r"[\"']?[ \t]*=[ \t]*" + value, own,
             _value_ok),
    ))
    colon = Group(":", re.compile(r":(?:(?=//[^\s/@]{1,256}@)|(?=//hooks\.slack\.com/)|(?i:(?<=key:)|(?<=key :)|"
                                  + _lookbehinds(("[\"']", "[\"'] "), ":") + "))"), (
        rule("url_password", lambda: _ds("BasicAuthDetector", 0), ds + "BasicAuthDetector",
             _basic_auth_ok),
        rule("slack_token", lambda: _ds("SlackDetector", 1), ds + "SlackDetector"),
        aws_secret,
        rule("password_assignment", r"(?i)[\"']" + _ASSIGN_KEYS + r"[\"'][ \t]*:[ \t]*[\"'](?P<value>[^\"'\n]{4,})"
             r"[\"']", own, _value_ok),
    ))
    upper_a = Group("A", re.compile(r"A(?:KIA|SIA|BIA|CCA|3T[A-Z0-9]|Iza)"), (
        rule("aws_access_key_id", r"(?<![A-Z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])",
             own + " (the prefixes of detect-secrets' AWSKeyDetector, with word boundaries)"),
        rule("google_api_key", _B + r"AIza[0-9A-Za-z_\-]{35}", own),
    ))
    upper_j = Group("J", re.compile(r"J(?<=eyJ)"), (
        rule("jwt", _B + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", own),
        rule("jwt", lambda: _ds("JwtTokenDetector", 0), ds + "JwtTokenDetector", _jwt_ok),
    ))
    upper_g = Group("G", re.compile(r"G\.(?<=SG\.)"), (
        rule("sendgrid_api_key", lambda: _ds("SendGridDetector", 0), ds + "SendGridDetector"),
    ))
    return dash, underscore, equals, colon, upper_a, upper_j, upper_g


class _Lazy:
    """A pattern compiled (or fetched from detect-secrets) on first use."""

    __slots__ = ("_flags", "_pattern", "_source")

    def __init__(self, source: str | Callable[[], re.Pattern[str]], flags: int = 0) -> None:
        self._source, self._flags, self._pattern = source, flags, None

    def get(self) -> re.Pattern[str]:
        if self._pattern is None:
            src = self._source
            self._pattern = re.compile(src, self._flags) if isinstance(src, str) else src()
        return self._pattern

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.get().finditer(text)


# -- evasions ----------------------------------------------------------------------------------------
_INVISIBLE = "\u00ad\u034f\u061c\u115f\u1160\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d"
_UNEVADE = {**dict.fromkeys(map(ord, _INVISIBLE)), **{ord(c): "-" for c in _DASHES}}


_DISGUISE = re.compile("[" + _INVISIBLE + _DASHES + "\uff01-\uff5e]")  # fullwidth ASCII: what NFKC undoes here


def normalise(text: str) -> str:
    """What a key looks like once disguises are undone: no zero-width characters, Unicode dashes as '-', fullwidth
    letters as ASCII (NFKC). Text without any of those is returned as is: ASCII costs one isascii(), other text one
    character-class search."""
    if text.isascii() or _DISGUISE.search(text) is None:
        return text
    text = text.translate(_UNEVADE)
    if _DISGUISE.search(text) is None:  # no fullwidth letters left: NFKC would change nothing we look for
        return text
    return unicodedata.normalize("NFKC", text).translate(_UNEVADE)


# A rule runs only in a window around each locator hit (its keyword or value lies within this many characters),
# so a hit in a long text costs the window, not the whole text.
_BEFORE, _AFTER = 256, 4096


def _windows(group: Group, text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for hit in group.locator.finditer(text):
        start, end = max(0, hit.start() - _BEFORE), min(len(text), hit.end() + _AFTER)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def _matches(text: str) -> list[tuple[str, re.Match[str]]]:
    """(kind, match) of every rule that matches the normalised text; matches stay inside this module."""
    found: list[tuple[str, re.Match[str]]] = []
    for group in groups():
        if group.anchor not in text:
            continue
        for start, end in _windows(group, text):
            for r in group.rules:
                for m in r.pattern.get().finditer(text, start, end):  # type: ignore[attr-defined]
                    if r.valid is None or r.valid(m):
                        found.append((r.kind, m))
    return found


def find_secrets(text: str) -> list[str]:
    """Names of likely secrets in text (API keys, private keys, tokens, passwords): they must never be uploaded.

    Kinds only, sorted: the matched value itself is never returned, so it cannot end up in a report.
    """
    if not text:
        return []
    text = normalise(text)
    for group in groups():  # the clean path: a memchr per group, a locator for the few present
        if group.anchor in text and group.locator.search(text) is not None:
            return sorted({kind for kind, _ in _matches(text)})
    return []


# -- redaction: for the rare places that quote input (reject excerpts, messages that name a value) ----------
_URL_USERINFO = re.compile(r"(://)[^/\s@\"'<>]+@|(://)[^/\s@\"'<>]*:[^/\s@\"'<>]*(?=[\"']|$)")
_LONG_TOKEN = re.compile(r"[A-Za-z0-9_\-+/=.]{24,}")


def redact(text: str) -> str:
    """text with every likely secret replaced by <REDACTED:kind> and URL user info by <REDACTED>.

    Meant for messages and excerpts; the scan runs on the normalised text, so a disguised key is replaced whole.
    """
    if not text:
        return text
    norm = normalise(text)
    hits = _matches(norm) if find_secrets(norm) else []
    if hits:
        spans = sorted((m.span(), kind) for kind, m in hits)
        out, pos = [], 0
        for (start, end), kind in spans:
            if start < pos:
                pos = max(pos, end)
                continue
            out.append(norm[pos:start])
            out.append(f"<REDACTED:{kind}>")
            pos = end
        out.append(norm[pos:])
        text = "".join(out)
    elif norm is not text:
        text = norm
    if "://" not in text:
        return text
    return _URL_USERINFO.sub(lambda m: (m.group(1) or m.group(2)) + "<REDACTED>" + ("@" if m.group(1) else ""),
                             text)


def excerpt(text: str, limit: int = 40) -> str:
    """At most `limit` characters of input, safe to quote in a report: secrets, URL passwords and any long
    key-like token are masked first, so even an undetected credential shows only as <...>."""
    text = text.encode("utf-8", "replace").decode("utf-8")  # undecodable bytes (surrogates) cannot be written
    safe = _LONG_TOKEN.sub("<...>", redact(text.replace("\n", " ").replace("\r", " ")))
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def rules() -> list[tuple[str, str, str]]:
    """(anchor, kind, source) of every rule: the ruleset as data, for docs and tests."""
    return [(g.anchor, r.kind, r.source) for g in groups() for r in g.rules]
