"""Credential redaction for text that is returned to a model.

:func:`redact_secrets` replaces every credential it recognises with ``[REDACTED:<kind>]``;
:func:`redact_withheld` replaces the server's own secrets (the Gitea token) in every encoding
(:func:`withheld_forms`). The rules, in the order they are tried (the first names a redaction
where two overlap):

- **Our own formats** (:data:`_OWN_RULES`): the credentials a Gitea deployment is most likely
  to hold (Gitea, GitHub, GitLab, AWS, private keys, ...), written with word-boundary guards
  and placeholder checks.
- **Vendor formats** (:mod:`.secret_formats`): the ~200 credential formats gitleaks documents,
  each a fixed prefix or structure (``dop_v1_<64 hex>``), or a vendor keyword next to an
  assignment (``algolia_key = <32 alnum>``), with gitleaks' minimum entropy.
- **Context rules** (:data:`_CONTEXT_RULES`): the ``Authorization`` header, credentials in
  URLs, and *assignments*: a secret-ish name (``password``, ``DB_PASSWORD``, ``api_token``,
  ``client_secret`` ...), ``=``/``:``/``=>``, and a value that is not a placeholder
  (``${VAR}``, ``<token>``, ``changeme``, ``xxx``), not code (``os.environ[...]``,
  ``self.token``, ``str``) and, for the weaker names, random enough.

**Keywords first.** Every rule names the literals that must occur for it to match (``dop_v1_``,
``password``, ``authorization``). One pass over the text finds where keywords occur (a
Hyperscan literal database when the ``hyperscan`` package is installed, else one substring
search per keyword on the lower-cased text). A rule whose matches start with a keyword is
tried only at its occurrences (``re.match`` at a position), so a rule costs an attempt per
occurrence, not a scan of the text; the few others are tried where the literal their matches
start with occurs, or over the text, and only when a keyword occurs.

**Linear.** Every repetition in every pattern is bounded or cannot overlap what follows it, so
no pattern backtracks catastrophically (tests feed the rules a megabyte of near-misses).
"""

from __future__ import annotations

import base64
import functools
import math
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple
from urllib.parse import quote, quote_plus

from .secret_formats import VENDOR_FORMATS

try:  # the regular-expression parser, to read a pattern's literal prefixes
    from re import _constants as _re_constants  # type: ignore[attr-defined, unused-ignore]
    from re import _parser as _re_parser  # type: ignore[attr-defined, unused-ignore]
except ImportError:  # Python 3.10
    import sre_constants as _re_constants  # type: ignore[no-redef, unused-ignore]
    import sre_parse as _re_parser  # type: ignore[no-redef, unused-ignore]

__all__ = [
    "REDACTION_MARKER",
    "SECRET_KINDS",
    "SECRET_RULES",
    "SecretRule",
    "find_secrets",
    "keyword_engine",
    "redact_secrets",
    "redact_withheld",
    "shannon_entropy",
    "withheld_forms",
]

REDACTION_MARKER = "[REDACTED:{kind}]"
_MARKER_PREFIX = "[REDACTED:"


def shannon_entropy(value: str) -> float:
    """Bits per character of ``value``'s own character distribution."""
    if not value:
        return 0.0
    n = len(value)
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / n * math.log2(c / n) for c in counts.values())


# --------------------------------------------------------------------------------------------
# Placeholders: documentation and templates, not credentials
# --------------------------------------------------------------------------------------------

_PLACEHOLDER_WORDS = frozenset(
    """
    changeme change_me change-me changeit password passwd pass pwd secret token apikey api_key
    key example sample dummy test testing none null nil true false undefined empty required
    optional string str bytes int redacted hidden placeholder todo fixme tbd xxx yyy value
    mypassword yourpassword my_password your_password mysecret yoursecret your_secret
    your_token yourtoken my_token mytoken secretpassword supersecret notasecret password123
    letmein foobar foo bar baz qwerty admin default insecure replace_me replaceme
    """.split()
)
_TEMPLATE = re.compile(
    r"[$%@]\{|\$\(|\{\{|\{%|<[^>]{0,200}>|%\(|%[A-Za-z_]+%|@[A-Za-z_]+@|\[REDACTED:"
)
_PLACEHOLDER_START = re.compile(
    r"""(?ix)
    \$[a-z_0-9]                                                  # $VAR, $1
    | (?:your|my|the|some|enter|insert|put|replace|fill|add)[-_ ]?(?:real[-_ ]?)?(?:own[-_ ]?)?
      [a-z_-]*(?:key|token|secret|pass(?:word)?|here|value)s?$  # your_api_key, my-token
    | (?:sample|example|dummy|fake|test|mock)[-_]                # example_key_123
    | [*.x\#?-]+$ | x{4,} | \*{3,} | \.{3,}                       # xxxx, ****, ...
    """
)
_PLACEHOLDER_END = ("here", "placeholder", "_example", "-example")


def is_placeholder(value: str) -> bool:
    """``${DB_PASSWORD}``, ``{{ pw }}``, ``<token>``, ``changeme``, ``xxxx``, ``your_key_here``,
    ``ghp_xxxxxxxx…``: a template or documentation, not a credential."""
    lowered = value.lower().strip("'\"`")
    if (
        lowered in _PLACEHOLDER_WORDS
        or lowered.endswith(_PLACEHOLDER_END)
        or _PLACEHOLDER_START.match(lowered)
        or _TEMPLATE.search(value)
    ):
        return True
    # Random strings of 16 or more characters never use fewer than 4 distinct ones.
    tail = value.translate(_SEPARATORS)[-16:]
    return len(tail) >= 8 and len(set(tail.lower())) < 4


_SEPARATORS = str.maketrans("", "", "-_.=/+")


def _literal_prefixes(pattern: str) -> set[str] | None:
    """The lower-cased literal text every match of ``pattern`` can start with (zero-width
    assertions skipped, small alternations and classes expanded), or None when a match can
    start with something else (a repetition, a large class) before any literal."""
    parsed = _re_parser.parse(pattern)

    def walk(items: list[Any], prefixes: set[str]) -> tuple[set[str], bool]:
        """Extend ``prefixes`` by ``items``; return them and whether the walk got to the end."""
        for op, av in items:
            if op in (_re_constants.AT, _re_constants.ASSERT, _re_constants.ASSERT_NOT):
                continue
            if op is _re_constants.LITERAL:
                prefixes = {p + chr(av).lower() for p in prefixes}
            elif op is _re_constants.IN and all(o is _re_constants.LITERAL for o, _ in av):
                if len(av) > 8:
                    return prefixes, False
                prefixes = {p + chr(v).lower() for p in prefixes for _o, v in av}
            elif op is _re_constants.SUBPATTERN:
                prefixes, complete = walk(list(av[3]), prefixes)
                if not complete:
                    return prefixes, False
            elif op is _re_constants.BRANCH:
                branches = [walk(list(branch), prefixes) for branch in av[1]]
                prefixes = set().union(*(b for b, _ in branches))
                if not all(complete for _, complete in branches) or len(prefixes) > 64:
                    # Each branch is cut where it stops being literal; the shortest is kept.
                    return prefixes, False
            else:
                return prefixes, False
        return prefixes, True

    prefixes, _complete = walk(list(parsed), {""})
    return None if "" in prefixes else prefixes


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------


#: Named groups that hold the secret: ``secret``/``secret2`` (alternatives), ``qv``/``bv`` (the
#: quoted or bare value of an assignment).
_SECRET_GROUPS = ("secret", "secret2", "qv", "bv")


@functools.cache
def _secret_groups(pattern: re.Pattern[str]) -> tuple[str, ...]:
    return tuple(name for name in _SECRET_GROUPS if name in pattern.groupindex)


class SecretRule(NamedTuple):
    """One credential format.

    ``keywords`` are lower-case literals; the rule is tried only when one occurs in the text
    (case-insensitively); an empty tuple means "always". The redacted part is the ``secret``
    group when the pattern has one, else (``group=GROUP``) its first participating group,
    else the whole match. ``accept`` sees the secret and the match and may refuse it.
    """

    kind: str
    keywords: tuple[str, ...]
    pattern: re.Pattern[str]
    entropy: float = 0.0
    group: int = 0
    accept: Callable[[str, re.Match[str]], bool] | None = None
    origin: str = "aegis"
    description: str = ""
    #: Characters the redaction extends over backwards from the match (at most 24).
    extend_back: str = ""

    def secret_span(self, match: re.Match[str]) -> tuple[int, int]:
        for name in _secret_groups(self.pattern):
            if match.start(name) >= 0:
                return match.span(name)
        if self.group:
            for index in range(1, (self.pattern.groups or 0) + 1):
                if match.start(index) >= 0:
                    return match.span(index)
        return match.span()


def _rule(
    kind: str,
    keywords: Iterable[str] | None,
    pattern: str,
    *,
    entropy: float = 0.0,
    accept: Callable[[str, re.Match[str]], bool] | None = None,
    extend_back: str = "",
    description: str = "",
) -> SecretRule:
    """One of our rules; ``keywords=None`` takes the literal texts the pattern starts with."""
    if keywords is None:
        prefixes = _literal_prefixes(pattern)
        assert prefixes, f"{kind}: no literal prefix to use as keywords"
        keywords = sorted(prefixes)
    return SecretRule(
        kind,
        tuple(k.lower() for k in keywords),
        re.compile(pattern),
        entropy,
        0,
        accept,
        "aegis",
        description,
        extend_back,
    )


def _not_placeholder(secret: str, match: re.Match[str]) -> bool:
    return not is_placeholder(secret)


_W = "A-Za-z0-9_"
_B64 = "A-Za-z0-9+/"
_DASHES = r"-(?:[ ]?-){2,9}"  # "-----", "----", "- - - - -"
_PEM_LABEL = r"[ ]*BEGIN[ ]+(?:[A-Z0-9]+[ ]+){0,4}PRIVATE[ ]+KEY(?:[ ]+BLOCK)?[ ]*"
_PEM_END = _PEM_LABEL.replace("BEGIN", "END")

# --- assignments ----------------------------------------------------------------------------
# name  : a secret-ish word, possibly inside a longer identifier (DB_PASSWORD, apiToken)
# sep   : = := => : ?= (never == != <= >=), optionally quoted name and spaces/tabs only
# value : quoted (no whitespace or quote inside) or bare (up to whitespace or , ; ) ] })
_STRONG_NAMES = r"pass(?:word|wd|phrase)|pwd|(?<![A-Za-z])pass(?![A-Za-z])"


def _joined(first: str, second: str) -> str:
    """``first`` and ``second`` as one name, spelled out (api_key, api-key, api.key, apikey),
    so that every spelling is a literal the keyword pass can anchor on."""
    return "|".join(f"{first}{sep}{second}" for sep in ("_", "-", r"\.", ""))


_WEAK_NAMES = "|".join(
    [
        "secret",
        "token",
        r"(?<![A-Za-z])auth(?![A-Za-z])",
        *(_joined(a, b) for a, b in (("api", "key"), ("access", "key"), ("auth", "key"))),
        *(_joined(a, b) for a, b in (("auth", "token"), ("private", "key"))),
        *(_joined(a, b) for a, b in (("client", "secret"), ("signing", "key"))),
        *(_joined(a, b) for a, b in (("encryption", "key"), ("master", "key"))),
        "credentials?",
    ]
)
_ASSIGNMENT = (
    r"(?i:(?P<name>{names})(?P<rest>[A-Za-z0-9_.-]{{0,30}}?))[\"'`]?[ \t]{{0,3}}"
    r"(?P<sep>:=|=>|\?=|(?<![=!<>:])=(?![=>~])|:(?![:/\\]))(?P<gap>[ \t]{{0,5}})"
    r"(?:(?P<q>[\"'`])(?P<qv>[^\s\"'`]{{1,300}})(?P=q)|(?P<bv>[^\s\"'`,;)\]}}<>]{{1,300}}))"
)
_IDENTIFIER_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:(?:\.|::|->)[A-Za-z_][A-Za-z0-9_]*)*")
_CODE_CHARS = re.compile(r"[()\[\]{}]|^(?:https?|ftp|file)://|^[./~]{1,2}/|^/[A-Za-z]")
_ENV_NAME = re.compile(r"[A-Z0-9_]+")
#: What follows the secret-ish word when the name is *about* a secret, not one: passwordKey
#: (a key in a secret store), password_file, token_url, secret_name, password_reset_timeout.
_META_SUFFIX = re.compile(
    r"(?i)[_.-]?(?:name|file|path|url|uri|field|hash|hashers?|timeout|length|len|min|max|count"
    r"|policy|validators?|prompt|reset\w*|label|type|ref|env|var|header|param|expiry|expires"
    r"|ttl|endpoint|id|ids|mode|format|enabled|required|regex|pattern|store)s?"
)
_KEY_SUFFIX = re.compile(r"(?i)[_.-]?keys?")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _identifier_start(text: str, start: int) -> int:
    """Where the identifier that contains ``text[start]`` begins (bounded look-back)."""
    i = start
    floor = max(0, start - 60)
    while i > floor and (text[i - 1].isalnum() or text[i - 1] in "_.-"):
        i -= 1
    return i


def _assignment_value(match: re.Match[str]) -> tuple[str, bool]:
    quoted = match.group("qv")
    return (quoted, True) if quoted is not None else (match.group("bv"), False)


def _accept_assignment(strong: bool) -> Callable[[str, re.Match[str]], bool]:
    def accept(secret: str, match: re.Match[str]) -> bool:
        value, quoted = _assignment_value(match)
        if is_placeholder(value) or len(value) < 6:
            return False
        text = match.string
        name = text[_identifier_start(text, match.start()) : match.end("name")]
        rest = match.group("rest")
        if rest and (_META_SUFFIX.fullmatch(rest) or (strong and _KEY_SUFFIX.fullmatch(rest))):
            return False
        # DB_PASSWORD=value (shell, .env) or DB_PASSWORD: value (YAML, compose)
        sep = match.group("sep")
        env_style = bool(_ENV_NAME.fullmatch(name)) and (
            (sep == "=" and not match.group("gap")) or sep == ":"
        )
        if not quoted:
            if _NUMBER.fullmatch(value):
                return False  # a number: a timeout, a length, a count
            if _CODE_CHARS.search(value) or value.endswith(("(", ":")):
                return False  # a call, a subscript, a URL or a path
            if _IDENTIFIER_PATH.fullmatch(value) and not env_style:
                # self.token, settings.gitea_token, str, Optional: code, not a value. An
                # environment-style name (DB_PASSWORD=supersecret) holds a value whatever it is.
                if not any(c.isdigit() for c in value) or "." in value:
                    return False
        if strong or env_style:
            return True
        # token/secret/key names also name non-secrets (token_type: bearer): ask for randomness.
        has_digit = any(c.isdigit() for c in value)
        has_alpha = any(c.isalpha() for c in value)
        return len(value) >= 8 and has_alpha and has_digit and shannon_entropy(value) >= 3.0

    return accept


def _accept_header(secret: str, match: re.Match[str]) -> bool:
    return not is_placeholder(secret) and len(secret) >= 8 and shannon_entropy(secret) >= 2.5


def _accept_token(secret: str, match: re.Match[str]) -> bool:
    return not is_placeholder(secret)


#: Our own formats, tried before the vendor formats (first rule wins where two overlap).
_OWN_RULES: tuple[SecretRule, ...] = (
    _rule(
        "private-key",
        ("begin",),
        # "-----BEGIN RSA PRIVATE KEY-----" also written with four dashes, spaced dashes or in
        # lower case; an unterminated block is redacted to the end of the text (so it is not
        # rescanned from every later BEGIN). The match starts at BEGIN (a keyword to anchor
        # on); the dashes before it are added to the redaction (``extend_back``).
        rf"(?:(?<=-)|(?<=- ))(?i:{_PEM_LABEL.lstrip('[ ]*')}){_DASHES}"
        rf"(?:[\s\S]*?{_DASHES}(?i:{_PEM_END}){_DASHES}|[\s\S]*)",
        extend_back="- ",
        description="PEM/PGP/OpenSSH private key blocks",
    ),
    _rule(
        "aws-access-key-id",
        ("akia", "asia", "abia", "acca", "a3t"),
        # Canonical upper case even when glued to a word; lower case only standing alone.
        r"(?:(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}"
        r"|(?<![A-Za-z0-9])(?i:a3t[a-z0-9]|akia|asia|abia|acca)[a-zA-Z0-9]{16})(?![A-Za-z0-9])",
        accept=_not_placeholder,
        description="AWS access key ids (AKIA/ASIA/ABIA/ACCA/A3T), any case",
    ),
    _rule(
        "aws-secret-access-key",
        ("aws", "secret"),
        # A named secret is a secret whatever its length.
        r"(?i:aws[_-]?secret[_-]?access[_-]?key|secret[_-]?access[_-]?key"
        r"|aws[_-]?secret(?:[_-]?key)?)[\"']?[ \t]{0,5}"
        rf"(?:=>|:=|[:=])[ \t]{{0,5}}[\"']?(?P<secret>[{_B64}]{{16,200}}=*)(?![{_B64}=])",
        accept=_not_placeholder,
        description="aws_secret_access_key / AWS_SECRET_KEY assignments, any length",
    ),
    _rule(
        "azure-storage-key",
        ("accountkey",),
        rf"(?i:accountkey)[ \t]{{0,3}}=[ \t]{{0,3}}(?P<secret>[{_B64}]{{86}}==)",
        accept=_not_placeholder,
        description="Azure storage connection-string AccountKey",
    ),
    _rule(
        "gitea-token",
        ("token", "gitea", "forgejo", "gogs"),
        # Gitea/Forgejo access tokens are 40 hex characters: after "token " (the Authorization
        # scheme Gitea documents) or assigned to a name that says what it is.
        r"(?<![A-Za-z0-9_])(?i:token)[ \t]+(?P<secret>[0-9a-fA-F]{40})(?![0-9a-zA-Z])"
        r"|(?i:gitea|forgejo|gogs)[A-Za-z0-9_.-]{0,30}?[\"']?[ \t]{0,3}(?:=>|:=|[:=])[ \t]{0,5}"
        r"[\"']?(?P<secret2>[0-9a-fA-F]{40})(?![0-9a-zA-Z])",
        accept=_not_placeholder,
        description="Gitea/Forgejo 40-hex tokens after `token ` or a gitea-named assignment",
    ),
    _rule(
        "github-token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        rf"(?<![{_W}])(?:gh[pousr]_[A-Za-z0-9]{{36,251}}|github_pat_[A-Za-z0-9_]{{60,251}})"
        rf"(?![{_W}])",
        accept=_accept_token,
        description="GitHub personal, OAuth, app and fine-grained tokens",
    ),
    _rule(
        "gitlab-token",
        ("glpat-", "gldt-", "glptt-", "glrt-", "glsoat-", "glffct-", "glft-", "glimt-")
        + ("glagent-", "gloas-", "glcbt-", "gr1348941"),
        r"(?<![A-Za-z0-9_-])(?:gl(?:pat|dt|ptt|rt|soat|ffct|ft|imt|agent|oas|cbt)-|GR1348941)"
        r"[A-Za-z0-9_-]{20,300}(?:\.[A-Za-z0-9]{2,40})?(?![A-Za-z0-9_-])",
        accept=_accept_token,
        description="GitLab tokens (personal, deploy, runner, trigger, ...)",
    ),
    _rule(
        "slack-token",
        ("xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "xoxe", "xapp-"),
        r"(?<![A-Za-z0-9_-])(?:xox[abposr]-(?:[0-9]-)?[0-9]{6,20}-[A-Za-z0-9-]{6,500}"
        r"|xoxe\.xox[bp]-[0-9]-[A-Za-z0-9]{100,300}|xoxe-[0-9]-[A-Za-z0-9]{100,300}"
        r"|xapp-[0-9]-[A-Z0-9]{6,40}-[0-9]{6,20}-[A-Za-z0-9]{20,200})(?![A-Za-z0-9_-])",
        accept=_accept_token,
        description="Slack bot, user, app and config tokens",
    ),
    _rule(
        "slack-webhook",
        ("hooks.slack.com",),
        r"(?<![A-Za-z0-9_.-])(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/"
        r"[A-Za-z0-9+/_-]{20,300}",
        description="Slack incoming webhooks",
    ),
    _rule(
        "stripe-live-key",
        ("sk_live_", "rk_live_"),
        rf"(?<![{_W}])[sr]k_live_[A-Za-z0-9]{{16,247}}(?![{_W}])",
        accept=_accept_token,
        description="Stripe live secret and restricted keys",
    ),
    _rule(
        "google-api-key",
        ("aiza",),
        r"(?<![A-Za-z0-9_-])AIza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])",
        accept=_accept_token,
        description="Google API keys",
    ),
    _rule(
        "anthropic-api-key",
        ("sk-ant-",),
        r"(?<![A-Za-z0-9_-])sk-ant-(?:api|admin|oat|sid)[0-9]{2}-[A-Za-z0-9_-]{32,300}"
        r"(?![A-Za-z0-9_-])",
        accept=_accept_token,
        description="Anthropic API and admin keys",
    ),
    _rule(
        "openai-api-key",  # every OpenAI key embeds base64("OpenAI") = T3BlbkFJ
        ("t3blbkfj",),
        r"(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{16,300}?T3BlbkFJ"
        r"[A-Za-z0-9_-]{16,300}(?![A-Za-z0-9_-])",
        accept=_accept_token,
        description="OpenAI API keys",
    ),
    _rule(
        "npm-token",
        ("npm_",),
        rf"(?<![{_W}])npm_[A-Za-z0-9]{{36}}(?![{_W}])",
        accept=_accept_token,
        description="npm access tokens",
    ),
    _rule(
        "pypi-token",  # the macaroon's fixed header for pypi.org / test.pypi.org
        ("pypi-age",),
        r"(?<![A-Za-z0-9_-])pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,2000}",
        description="PyPI upload tokens",
    ),
    _rule(
        "huggingface-token",
        ("hf_",),
        rf"(?<![{_W}])hf_[A-Za-z]{{34}}(?![{_W}])",
        accept=_accept_token,
        description="Hugging Face access tokens",
    ),
    _rule(
        "sendgrid-api-key",
        ("sg.",),
        r"(?<![A-Za-z0-9_.-])SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])",
        accept=_accept_token,
        description="SendGrid API keys",
    ),
    _rule(
        "jwt",  # header and payload are both base64url JSON objects: "eyJ" = '{"'
        ("eyj",),
        r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{10,4000}\.eyJ[A-Za-z0-9_-]{10,8000}"
        r"\.[A-Za-z0-9_-]{16,2000}(?![A-Za-z0-9_-])",
        description="JSON Web Tokens (signed)",
    ),
    _rule(
        "discord-bot-token",  # detect-secrets' DiscordBotTokenDetector format
        ("discord",),
        r"[MNO](?<![A-Za-z0-9_-][MNO])[A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}"
        r"(?![A-Za-z0-9_-])",
        entropy=3.5,
        description="Discord bot tokens (detect-secrets format)",
    ),
    _rule(
        "square-oauth-secret",  # detect-secrets' SquareOAuthDetector format
        ("sq0csp-",),
        r"sq0csp-[A-Za-z0-9_-]{43}",
        description="Square OAuth secrets (detect-secrets format)",
    ),
)


def _vendor_rules() -> tuple[SecretRule, ...]:
    return tuple(
        SecretRule(
            f.kind,
            f.keywords,
            re.compile(f.pattern),
            f.entropy,
            f.group,
            _accept_token,
            "gitleaks",
            "",
        )
        for f in VENDOR_FORMATS
    )


#: Rules that recognise a secret by its context rather than its format: tried last, so a
#: known format inside a header or an assignment is reported as what it is.
_CONTEXT_RULES: tuple[SecretRule, ...] = (
    _rule(
        "authorization-header",
        (
            "authorization",
            "x-api-key",
            "private-token",
            "x-auth-token",
            "x-access-token",
            "api-key",
        ),
        r"(?i:authorization)[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\"']?"
        r"(?:(?i:token|bearer|basic|digest|apikey|api-key|sso-key|key|otp)[ \t]+)?"
        r"(?P<secret>[A-Za-z0-9._~+/=:-]{8,4000})"
        r"|(?i:x-api-key|private-token|x-auth-token|x-access-token|api-key)[\"']?[ \t]{0,3}:"
        r"[ \t]{0,3}[\"']?(?P<secret2>[A-Za-z0-9._~+/=-]{8,4000})",
        accept=_accept_header,
        description="Authorization: token|Basic|Bearer … and API-key header values",
    ),
    # scheme://user:password@host: only the password is redacted.
    _rule(
        "url-password",
        ("://",),
        r"(?<=[A-Za-z0-9+.-])://[^\s:/?#@\[\]\"'<>]{0,256}:(?P<secret>[^\s/?#@\"'<>]{1,256})@",
        accept=_not_placeholder,
        description="Passwords in URLs (scheme://user:password@host)",
    ),
    _rule(
        "password-assignment",
        None,
        _ASSIGNMENT.format(names=_STRONG_NAMES),
        accept=_accept_assignment(strong=True),
        description="password / passwd / passphrase / *_PASSWORD= assignments (any value "
        "that is not a placeholder or code)",
    ),
    _rule(
        "secret-assignment",
        None,
        _ASSIGNMENT.format(names=_WEAK_NAMES),
        accept=_accept_assignment(strong=False),
        description="secret / token / api_key / client_secret / *_TOKEN= assignments (random-"
        "looking values; any value for environment-style names)",
    ),
)

#: Every rule, in priority order.
SECRET_RULES: tuple[SecretRule, ...] = _OWN_RULES + _vendor_rules() + _CONTEXT_RULES
SECRET_KINDS: tuple[str, ...] = tuple(dict.fromkeys(rule.kind for rule in SECRET_RULES))


# --------------------------------------------------------------------------------------------
# Keyword engines: where can a rule match in this text?
# --------------------------------------------------------------------------------------------

_KEYWORDS: tuple[str, ...] = tuple(
    sorted({k for rule in SECRET_RULES for k in rule.keywords}, key=lambda k: (-len(k), k))
)
_RULES_BY_KEYWORD: dict[str, tuple[int, ...]] = {
    keyword: tuple(i for i, rule in enumerate(SECRET_RULES) if keyword in rule.keywords)
    for keyword in _KEYWORDS
}
_ALWAYS: tuple[int, ...] = tuple(i for i, rule in enumerate(SECRET_RULES) if not rule.keywords)


def _anchored(rule: SecretRule) -> bool:
    """Does every match of ``rule`` start where one of its keywords occurs? Then the rule is
    tried only at those places, never scanned over the whole text."""
    prefixes = _literal_prefixes(rule.pattern.pattern)
    return prefixes is not None and all(
        any(prefix.startswith(k) for k in rule.keywords) for prefix in prefixes
    )


def _anchors(rule: SecretRule) -> tuple[str, ...] | None:
    """For a rule its keywords do not anchor: the literal texts its matches start with, to be
    found in the text once its keywords said it may match (lob's keywords are its values'
    ``test_``/``live_``, but every match starts ``lob``). None: search the whole text."""
    prefixes = _literal_prefixes(rule.pattern.pattern)
    if prefixes and all(len(p) >= 3 for p in prefixes):
        return tuple(sorted(prefixes))
    return None


_ANCHORED: tuple[bool, ...] = tuple(_anchored(rule) for rule in SECRET_RULES)
_ANCHORS: tuple[tuple[str, ...] | None, ...] = tuple(
    None if anchored else _anchors(rule)
    for rule, anchored in zip(SECRET_RULES, _ANCHORED, strict=True)
)


def _folded(text: str) -> str:
    """``text`` lower-cased with one character per character (positions are kept): anything
    outside Latin-1 becomes ``?``, which no keyword contains."""
    if not text.isascii():
        text = text.encode("latin-1", "replace").decode("latin-1")
    return text.lower()


class _SubstringEngine:
    """Stdlib: ``in``, then ``find``, per keyword over the folded text (C substring search)."""

    name = "substring"

    def occurrences(self, text: str) -> dict[str, list[int]]:
        folded = _folded(text)
        found: dict[str, list[int]] = {}
        for keyword in _KEYWORDS:
            if keyword in folded:
                positions = []
                position = folded.find(keyword)
                while position >= 0:
                    positions.append(position)
                    position = folded.find(keyword, position + 1)
                found[keyword] = positions
        return found


class _HyperscanEngine:
    """Hyperscan: every keyword in one caseless literal database, one pass over the text."""

    name = "hyperscan"

    def __init__(self) -> None:
        import hyperscan  # type: ignore[import-not-found, import-untyped, unused-ignore]

        self._hs = hyperscan
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=[re.escape(k).encode() for k in _KEYWORDS],
            ids=list(range(len(_KEYWORDS))),
            elements=len(_KEYWORDS),
            flags=[hyperscan.HS_FLAG_CASELESS] * len(_KEYWORDS),
        )
        self._local = threading.local()  # scratch space serves one scan at a time

    def occurrences(self, text: str) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:  # texts are cleaned on the loop and in worker threads
            scratch = self._local.scratch = self._hs.Scratch(self._db)
        # Latin-1 with "?" for the rest: one byte per character, so offsets are positions.
        data = text.encode("latin-1", "replace")
        self._db.scan(data, match_event_handler=_on_keyword, context=found, scratch=scratch)
        return found


def _on_keyword(index: int, start: int, end: int, flags: int, context: object) -> None:
    found: dict[str, list[int]] = context  # type: ignore[assignment]
    keyword = _KEYWORDS[index]
    position = end - len(keyword)
    if keyword in found:
        found[keyword].append(position)
    else:
        found[keyword] = [position]


@functools.cache
def keyword_engine(name: str | None = None) -> _SubstringEngine | _HyperscanEngine:
    """The keyword engine: ``"hyperscan"`` when importable (or asked for), else ``"substring"``."""
    if name in (None, "hyperscan"):
        try:
            return _HyperscanEngine()
        except ImportError:
            if name == "hyperscan":
                raise
    return _SubstringEngine()


def warm_up() -> str:
    """Build the keyword engine and scan once (the calling thread's scratch space), so the first
    tool call does not pay for it on the event loop: importing hyperscan and compiling its
    database took ~0.6 s, ~560 ms of it the import. Returns the engine's name."""
    engine = keyword_engine()
    engine.occurrences("warm-up: token")
    return engine.name


# --------------------------------------------------------------------------------------------
# Matching and replacing
# --------------------------------------------------------------------------------------------


class Finding(NamedTuple):
    start: int
    end: int
    kind: str


def _find_all(folded: str, literals: tuple[str, ...]) -> list[int]:
    found = []
    for literal in literals:
        position = folded.find(literal)
        while position >= 0:
            found.append(position)
            position = folded.find(literal, position + 1)
    return sorted(found)


def _matches_at(pattern: re.Pattern[str], text: str, starts: list[int]) -> Iterable[re.Match[str]]:
    """Matches of ``pattern`` starting at ``starts`` (sorted), never inside an earlier match:
    like ``finditer``, so a match that runs to the end of the text (an unterminated private
    key) is tried once, not once per keyword inside it."""
    end = 0
    for start in starts:
        if start < end:
            continue
        match = pattern.match(text, start)
        if match is not None and match.end() > start:
            end = match.end()
            yield match


def find_secrets(text: str, engine: str | None = None) -> list[Finding]:
    """Every credential in ``text``: non-overlapping spans in order (earlier rule wins ties).

    A rule is tried only if one of its keywords occurs: at each occurrence when its matches
    start with a keyword (most rules), else at each occurrence of the literal its matches
    start with, else (a handful of rare formats) over the whole text.
    """
    occurrences = keyword_engine(engine).occurrences(text)
    if not occurrences and not _ALWAYS:
        return []
    positions: dict[int, list[int]] = {index: [] for index in _ALWAYS}
    for keyword, starts in occurrences.items():
        for index in _RULES_BY_KEYWORD[keyword]:
            if index in positions:
                positions[index] += starts
            else:
                positions[index] = list(starts)
    candidates: list[tuple[int, int, int, str]] = []
    folded: str | None = None
    for index in sorted(positions):
        rule = SECRET_RULES[index]
        pattern = rule.pattern
        matches: Iterable[re.Match[str] | None]
        if _ANCHORED[index]:
            starts = positions[index]
            if len(starts) > 1:
                starts = sorted(set(starts))
            matches = _matches_at(pattern, text, starts)
        elif _ANCHORS[index] is not None:
            if folded is None:
                folded = _folded(text)
            matches = _matches_at(pattern, text, _find_all(folded, _ANCHORS[index] or ()))
        else:
            matches = pattern.finditer(text)
        for match in matches:
            if match is None or match.end() == match.start():
                continue
            start, end = rule.secret_span(match)
            if end <= start:
                continue
            if rule.extend_back:
                floor = max(0, start - 24)
                while start > floor and text[start - 1] in rule.extend_back:
                    start -= 1
            secret = text[start:end]
            if _MARKER_PREFIX in secret:
                continue
            if rule.entropy and shannon_entropy(secret) < rule.entropy:
                continue
            if rule.accept is not None and not rule.accept(secret, match):
                continue
            candidates.append((start, index, end, rule.kind))
    if not candidates:
        return []
    candidates.sort()
    findings: list[Finding] = []
    for start, _index, end, kind in candidates:
        if findings and start < findings[-1].end:
            last = findings[-1]
            if end > last.end:  # overlapping: one redaction covering both
                findings[-1] = Finding(last.start, end, last.kind)
            continue
        findings.append(Finding(start, end, kind))
    return findings


_MAX_REDACTION_ROUNDS = 4


def redact_secrets(text: str, engine: str | None = None) -> tuple[str, list[str]]:
    """Replace credentials with ``[REDACTED:<kind>]``; return the text and the kinds, in order.

    Only the secret is replaced: ``password: [REDACTED:password-assignment]`` keeps the name,
    ``scheme://user:[REDACTED:url-password]@host`` the user. A redaction can make a
    neighbouring token stand alone, so the text is scanned again until nothing new is found:
    redacting the result finds nothing.
    """
    kinds: list[str] = []
    for _ in range(_MAX_REDACTION_ROUNDS):
        findings = find_secrets(text, engine)
        if not findings:
            break
        parts: list[str] = []
        position = 0
        for finding in findings:
            parts.append(text[position : finding.start])
            parts.append(REDACTION_MARKER.format(kind=finding.kind))
            kinds.append(finding.kind)
            position = finding.end
        parts.append(text[position:])
        text = "".join(parts)
    return text, kinds


# --------------------------------------------------------------------------------------------
# The server's own secrets, in every encoding a file could hold them in
# --------------------------------------------------------------------------------------------

_MIN_ENCODED_CORE = 12


def withheld_forms(secret: str) -> tuple[str, ...]:
    """``secret`` as it may appear in content: plain, base64 and base64url (at any alignment
    inside a longer encoded value, such as ``user:token`` in a Basic header or a Kubernetes
    Secret), hex (either case) and percent-encoded (either case). Longest first."""
    if not secret:
        return ()
    raw = secret.encode("utf-8")
    forms = {secret}
    if secret.isascii() and all(c in "0123456789abcdefABCDEF" for c in secret):
        forms |= {secret.lower(), secret.upper()}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode("ascii")
        forms |= {whole, whole.rstrip("=")}
        for offset in range(3):
            # The characters that depend only on the secret's own bits, whatever surrounds it.
            encoded = encode(b"\0" * offset + raw).decode("ascii")
            first = -(-8 * offset // 6)
            last = 8 * (offset + len(raw)) // 6
            core = encoded[first:last]
            if len(core) >= _MIN_ENCODED_CORE:
                forms.add(core)
    forms |= {raw.hex(), raw.hex().upper()}
    forms |= {"".join(f"%{b:02X}" for b in raw), "".join(f"%{b:02x}" for b in raw)}
    # URL-encoded the usual ways: only the characters a URL cannot hold are escaped.
    forms |= {quote(secret, safe=""), quote(secret), quote_plus(secret)}
    return tuple(sorted(forms, key=lambda f: (-len(f), f)))


@functools.lru_cache(maxsize=16)
def _withheld_forms(withheld: tuple[str, ...]) -> tuple[str, ...]:
    forms: set[str] = set()
    for secret in withheld:
        forms.update(withheld_forms(secret))
    return tuple(sorted(forms, key=lambda f: (-len(f), f)))


def redact_withheld(
    text: str, withheld: tuple[str, ...], kind: str = "gitea-token"
) -> tuple[str, int]:
    """Replace every form (:func:`withheld_forms`) of each withheld secret; return the text and
    how many were replaced."""
    count = 0
    marker = REDACTION_MARKER.format(kind=kind)
    for form in _withheld_forms(withheld):
        if form in text:
            count += text.count(form)
            text = text.replace(form, marker)
    return text, count
