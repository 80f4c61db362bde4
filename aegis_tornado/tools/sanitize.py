"""Output hygiene for text that is returned to a model.

Repository content is written by people we do not control, and what we return is read by a
model and possibly by a third party. Two things are removed before it leaves:

- **Invisible characters** (:func:`strip_invisible`): text a human reviewer cannot see but a
  model reads — zero-width characters, bidi overrides ("Trojan Source"), Unicode tag characters
  ("ASCII smuggling") and runs of variation selectors ("emoji smuggling") — are the carrier of
  hidden prompt injections. Visible text (CJK, accents, emoji sequences) is kept intact.
- **Credentials** (:func:`redact_secrets`): high-confidence formats only (a fixed prefix or
  structure: PEM private keys, AWS, GitHub, GitLab, Slack, Stripe live, Google, ...). There is
  no entropy guessing, which would mangle ordinary code. A redacted secret becomes
  ``[REDACTED:<kind>]`` (:data:`REDACTION_MARKER`).

:func:`clean_text` does both; :func:`truncate_utf8` and :func:`looks_binary` size and sniff
content. Clean *before* truncating: a token cut in half no longer looks like a token.

Everything here runs in time linear in its input (tested with adversarial inputs): every long
repetition in the secret patterns is bounded and preceded by a guard that excludes the repeated
class, so a match can start at most once per run of it, and a private key without its END line
is consumed to the end of the text instead of being rescanned. Stdlib only.
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata
from collections.abc import Callable
from typing import NamedTuple

__all__ = [
    "BINARY_SNIFF_BYTES",
    "REDACTION_MARKER",
    "SECRET_KINDS",
    "CleanText",
    "clean_text",
    "looks_binary",
    "redact_secrets",
    "strip_invisible",
    "truncate_utf8",
]

REDACTION_MARKER = "[REDACTED:{kind}]"
BINARY_SNIFF_BYTES = 8192  # what git itself inspects to decide "binary"

# --------------------------------------------------------------------------------------------
# Invisible characters
# --------------------------------------------------------------------------------------------
#
# Basis: Unicode general category Cf plus the Default_Ignorable_Code_Point property, plus the
# C0/C1 controls other than ordinary whitespace. Ranges are spelled out (not taken from
# unicodedata) so behaviour does not change with the Python version, and so reserved
# default-ignorable code points (future invisible characters) are covered already.
#
# Always removed:
_ALWAYS_REMOVED = (
    "\x00-\x08\x0e-\x1f\x7f-\x9f"  # C0/C1 controls, DEL; keeps \t \n \v \f \r
    "\u00ad"  # SOFT HYPHEN: invisible unless at a line break; splits words to evade filters
    "\u034f"  # COMBINING GRAPHEME JOINER
    "\u061c"  # ARABIC LETTER MARK (bidi)
    "\u115f\u1160"  # HANGUL CHOSEONG/JUNGSEONG FILLER (blank)
    "\u17b4\u17b5"  # KHMER inherent vowels (discouraged, invisible)
    "\u200b"  # ZERO WIDTH SPACE
    "\u200e\u200f"  # LRM, RLM
    "\u202a-\u202e"  # bidi embeddings and overrides
    "\u2060-\u206f"  # word joiner, invisible operators, bidi isolates, deprecated format chars
    "\u3164"  # HANGUL FILLER
    "\ufeff"  # BOM / ZERO WIDTH NO-BREAK SPACE, anywhere
    "\uffa0"  # HALFWIDTH HANGUL FILLER
    "\ufff0-\ufffb"  # reserved default-ignorables, interlinear annotation (hides text)
    "\U00013430-\U0001343f"  # Egyptian hieroglyph format controls
    "\U0001bca0-\U0001bca3"  # shorthand format controls
    "\U0001d173-\U0001d17a"  # musical symbol format controls
    "\U000e0000-\U000e001f"  # LANGUAGE TAG and reserved
    "\U000e0080-\U000e00ff"  # reserved
    "\U000e01f0-\U000e0fff"  # reserved
)
# Kept in context (see _resolve_run), otherwise removed:
_JOINERS = "\u200c\u200d\u180e"  # ZWNJ, ZWJ, MONGOLIAN VOWEL SEPARATOR
_VARIATION_SELECTORS = "\u180b-\u180d\u180f\ufe00-\ufe0f\U000e0100-\U000e01ef"
_TAGS = "\U000e0020-\U000e007f"
# Cf characters deliberately *not* removed: the prepended concatenation marks are visible
# (they draw a sign spanning the digits that follow) and carry meaning in Arabic, Syriac and
# Kaithi text: U+0600-0605, U+06DD, U+070F, U+0890-0891, U+08E2, U+110BD, U+110CD.

_CANDIDATES = re.compile(f"[{_ALWAYS_REMOVED}{_JOINERS}{_VARIATION_SELECTORS}{_TAGS}]+")
_JOINER_SET = frozenset(_JOINERS)
_VS_RE = re.compile(f"[{_VARIATION_SELECTORS}]")
_KEYCAP_BASES = frozenset("#*0123456789")  # the only ASCII bases of emoji sequences
_EMOJI_VS = frozenset("\ufe0e\ufe0f")
_BLACK_FLAG = "\U0001f3f4"
# The RGI emoji tag sequences: England, Scotland, Wales flags (U+1F3F4 + tags + CANCEL TAG).
_FLAG_TAG_SEQUENCES = tuple(
    "".join(chr(0xE0000 + ord(c)) for c in code) + "\U000e007f"
    for code in ("gbeng", "gbsct", "gbwls")
)

# What the character just before a position is, as far as attaching to it goes.
_NONE, _ASCII_BASE, _OTHER_BASE, _ATTACHED, _JOINED = range(5)
_ONLY_REMOVED = re.compile(f"[{_ALWAYS_REMOVED}]+")
#: The ASCII characters among the candidates: C0 controls but tab, LF, VT, FF, CR; and DEL.
_ASCII_CONTROLS = tuple(chr(c) for c in (*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F))


def _base_kind(ch: str | None) -> int:
    """What a visible neighbour ``ch`` (never itself a candidate) is as a base."""
    if ch is None or ch.isspace() or unicodedata.category(ch) in ("Cc", "Cs"):
        return _NONE
    return _ASCII_BASE if ch < "\x80" else _OTHER_BASE


def _context(before: str | None) -> str | int:
    """The part of the preceding character that matters: the character itself when it is a
    keycap base, the black flag or a virama, otherwise only its kind (so results cache well)."""
    if before is not None and (
        before in _KEYCAP_BASES or before == _BLACK_FLAG or unicodedata.combining(before) == 9
    ):
        return before
    return _base_kind(before)


def _resolve_run(run: str, before: str | int, after: int) -> str:
    """The characters of a maximal run of candidates that stay.

    ``before`` is the preceding character's :func:`_context`, ``after`` the following
    character's :func:`_base_kind` (neither is ever a candidate itself).
    - Variation selector: kept only as the first one after a visible non-ASCII character, or
      U+FE0E/U+FE0F after ``# * 0-9`` (keycaps). One per base: a run of them carries data.
    - ZWJ/ZWNJ/MVS: kept only between two visible non-ASCII characters (or after an attached
      variation selector), as in emoji ZWJ sequences, Persian and Indic text, or right after a
      virama (Indic half forms and word-final chillu). Never next to ASCII (``ig<ZWJ>nore`` is
      an evasion, not orthography) and never two in a run (a run of joiners carries data).
    - Tags: kept only as a complete RGI flag sequence right after U+1F3F4.
    Decisions depend only on characters that are kept, so the result is stable when cleaned
    again.
    """
    kept: list[str] = []
    if isinstance(before, str):
        prev = _base_kind(before)
    else:
        prev = before
    single_joiner = sum(ch in _JOINER_SET for ch in run) == 1
    i, n = 0, len(run)
    if before == _BLACK_FLAG:
        for sequence in _FLAG_TAG_SEQUENCES:
            if run.startswith(sequence):
                kept.append(sequence)
                i = len(sequence)
                prev = _ATTACHED
                break
    while i < n:
        ch = run[i]
        if _VS_RE.match(ch):
            if prev == _OTHER_BASE or (
                prev == _ASCII_BASE and before in _KEYCAP_BASES and ch in _EMOJI_VS
            ):
                kept.append(ch)
                prev = _ATTACHED
        elif ch in _JOINER_SET:
            after_virama = i == 0 and isinstance(before, str) and unicodedata.combining(before) == 9
            if (
                single_joiner
                and i == n - 1
                and (after_virama or (prev in (_OTHER_BASE, _ATTACHED) and after == _OTHER_BASE))
            ):
                kept.append(ch)
                prev = _JOINED
        i += 1
    return "".join(kept)


# Real text repeats the same few short runs (an emoji's VS16 + ZWJ, a Persian ZWNJ).
_resolve_short_run = functools.lru_cache(maxsize=4096)(_resolve_run)


def strip_invisible(text: str) -> tuple[str, int]:
    """Remove invisible and bidi-control characters; return the text and how many were removed.

    Removed: zero-width space/joiners (U+200B-U+200D), word joiner and invisible operators
    (U+2060-U+2064), BOM (U+FEFF) anywhere, bidi embeddings/overrides/isolates (U+202A-U+202E,
    U+2066-U+2069), LRM/RLM/ALM, tag characters (U+E0000-U+E007F), soft hyphen, Hangul fillers,
    other format characters (Cf) and reserved default-ignorable code points, and the C0/C1
    control characters except tab, newline, vertical tab, form feed and carriage return.

    Kept: all visible text, ordinary whitespace, the visible Cf "number signs" of Arabic,
    Syriac and Kaithi, and — only where they are part of visible text — one variation selector
    after a base character, ZWJ/ZWNJ between non-ASCII characters (emoji sequences, Persian,
    Indic scripts) and the tag sequences of the England/Scotland/Wales flags.
    """
    if text.isascii():
        # Only ASCII controls can be invisible here; looking for each is far cheaper than the
        # general pattern, which costs ~25 ns a character even on plain ASCII.
        if not any(control in text for control in _ASCII_CONTROLS):
            return text, 0
    elif not _CANDIDATES.search(text):
        return text, 0
    out: list[str] = []
    removed = 0
    position = 0
    n = len(text)
    for match in _CANDIDATES.finditer(text):
        start, end = match.span()
        out.append(text[position:start])
        run = match.group()
        if _ONLY_REMOVED.fullmatch(run):
            kept = ""
        else:
            resolve = _resolve_short_run if len(run) <= 16 else _resolve_run
            kept = resolve(
                run,
                _context(text[start - 1] if start else None),
                _base_kind(text[end] if end < n else None),
            )
        out.append(kept)
        removed += len(run) - len(kept)
        position = end
    out.append(text[position:])
    return "".join(out), removed


# --------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------


def _is_placeholder_token(value: str) -> bool:
    """``ghp_xxxxxxxx…``, ``AKIAXXXXXXXXXXXXXXXX``: documentation, not a credential.

    Every format here ends in at least 16 random characters, and 16 random characters never
    use fewer than 4 distinct ones.
    """
    tail = re.sub(r"[-_.]", "", value)[-16:]
    return len(set(tail)) < 4


_TEMPLATE_PASSWORD = re.compile(
    r"\$|\{\{|<|%\(|%\{|[*xX.]+\Z|(?i:(?:my|your)?[_-]?(?:password|passwd|pass|pwd|secret))\Z"
)


def _is_placeholder_password(value: str) -> bool:
    """``${DB_PASSWORD}``, ``{{ pw }}``, ``<password>``, ``****``, ``password``: a template or
    documentation, not a secret (and never an earlier redaction marker)."""
    return bool(_TEMPLATE_PASSWORD.match(value)) or "[REDACTED:" in value


class _Rule(NamedTuple):
    """One secret format.

    Each of ``patterns`` begins with a plain literal character, so the combined pattern starts
    every branch with a literal and ``re`` skips, in C, every position whose character cannot
    start a secret instead of trying all rules everywhere. ``not_after`` lists the characters
    that must not precede a match (a token glued to a word is not a token); it also keeps the
    matcher linear, since a match can then start at most once per run of those characters.
    A pattern may contain ``(?P<VALUE>...)``: then only that part is replaced.
    """

    kind: str
    patterns: tuple[str, ...]
    not_after: str | None = None
    skip: Callable[[str], bool] | None = None


def _either_case(word: str) -> tuple[str, ...]:
    """A case-insensitive word as patterns that each begin with a literal letter."""
    first, rest = word[0], word[1:]
    return tuple(f"{c}(?i:{rest})" for c in dict.fromkeys((first.lower(), first.upper())))


_W = "A-Za-z0-9_"  # "word" characters; tokens must not be glued to them
_WD = "A-Za-z0-9_-"  # the same, for tokens whose alphabet includes '-'
_RB = f"(?![{_W}])"
_RBD = f"(?![{_WD}])"
_PEM_LABEL = r"[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----"
_AWS_SECRET_NAMES = _either_case(r"aws[_-]?secret[_-]?access[_-]?key") + _either_case(
    r"secret[_-]?access[_-]?key"
)
_AWS_SECRET_VALUE = (
    r"[\"']?\s{0,5}(?:=>|[:=])\s{0,5}[\"']?(?P<VALUE>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)
_GITLAB_BODY = rf"[A-Za-z0-9_-]{{20,300}}(?:\.[A-Za-z0-9]{{2,40}})?{_RBD}"

# Order matters only where two rules can start at the same position (anthropic before openai).
_RULES: tuple[_Rule, ...] = (
    # PEM/PGP private key blocks; an unterminated BEGIN is redacted to the end of the text.
    _Rule(
        "private-key",
        (rf"-----BEGIN{_PEM_LABEL}(?:[\s\S]*?-----END{_PEM_LABEL}|[\s\S]*)",),
    ),
    _Rule(
        "aws-access-key-id",
        (f"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{{16}}{_RB}",),
        not_after="A-Za-z0-9",
        skip=_is_placeholder_token,
    ),
    # Keep the variable name (in any case and quoting), redact the 40-character value.
    _Rule(
        "aws-secret-access-key",
        tuple(name + _AWS_SECRET_VALUE for name in _AWS_SECRET_NAMES),
        not_after="A-Za-z0-9",
        skip=_is_placeholder_token,
    ),
    _Rule(
        "azure-storage-key",
        tuple(
            name + r"\s{0,3}=\s{0,3}(?P<VALUE>[A-Za-z0-9+/]{86}==)"
            for name in _either_case("accountkey")
        ),
        not_after="A-Za-z0-9",
        skip=_is_placeholder_token,
    ),
    _Rule(
        "github-token",
        (f"gh[pousr]_[A-Za-z0-9]{{36,251}}{_RB}", f"github_pat_[A-Za-z0-9_]{{60,251}}{_RB}"),
        not_after=_W,
        skip=_is_placeholder_token,
    ),
    _Rule(
        "gitlab-token",
        (
            f"gl(?:pat|dt|ptt|rt|soat|ffct|ft|imt|agent|oas|cbt)-{_GITLAB_BODY}",
            f"GR1348941{_GITLAB_BODY}",  # runner registration token
        ),
        not_after=_WD,
        skip=_is_placeholder_token,
    ),
    _Rule(
        "slack-token",
        (
            f"xox[abposr]-(?:[0-9]-)?[0-9]{{6,20}}-[A-Za-z0-9-]{{6,500}}{_RBD}",
            f"xoxe\\.xox[bp]-[0-9]-[A-Za-z0-9]{{100,300}}{_RBD}",
            f"xoxe-[0-9]-[A-Za-z0-9]{{100,300}}{_RBD}",
            f"xapp-[0-9]-[A-Z0-9]{{6,40}}-[0-9]{{6,20}}-[A-Za-z0-9]{{20,200}}{_RBD}",
        ),
        not_after=_WD,
        skip=_is_placeholder_token,
    ),
    _Rule(
        "slack-webhook",
        tuple(
            prefix + r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{20,300}"
            for prefix in ("https?://", "")
        ),
        not_after="A-Za-z0-9_.-",
    ),
    _Rule(
        "stripe-live-key",
        (f"sk_live_[A-Za-z0-9]{{16,247}}{_RB}", f"rk_live_[A-Za-z0-9]{{16,247}}{_RB}"),
        not_after=_W,
        skip=_is_placeholder_token,
    ),
    _Rule(
        "google-api-key",
        (f"AIza[A-Za-z0-9_-]{{35}}{_RBD}",),
        not_after=_WD,
        skip=_is_placeholder_token,
    ),
    _Rule(
        "anthropic-api-key",
        (f"sk-ant-(?:api|admin|oat|sid)[0-9]{{2}}-[A-Za-z0-9_-]{{32,300}}{_RBD}",),
        not_after=_WD,
        skip=_is_placeholder_token,
    ),
    _Rule(
        "openai-api-key",  # every OpenAI key embeds base64("OpenAI") = T3BlbkFJ
        (
            "sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{16,300}T3BlbkFJ[A-Za-z0-9_-]{16,300}"
            + _RBD,
        ),
        not_after=_WD,
        skip=_is_placeholder_token,
    ),
    _Rule(
        "npm-token",
        (f"npm_[A-Za-z0-9]{{36}}{_RB}",),
        not_after=_W,
        skip=_is_placeholder_token,
    ),
    _Rule(
        "pypi-token",  # the macaroon's fixed header for pypi.org / test.pypi.org
        ("pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,2000}",),
        not_after=_WD,
    ),
    _Rule(
        "huggingface-token",
        (f"hf_[A-Za-z]{{34}}{_RB}",),
        not_after=_W,
        skip=_is_placeholder_token,
    ),
    _Rule(
        "sendgrid-api-key",
        (f"SG\\.[A-Za-z0-9_-]{{22}}\\.[A-Za-z0-9_-]{{43}}{_RBD}",),
        not_after="A-Za-z0-9_.-",
        skip=_is_placeholder_token,
    ),
    _Rule(
        "jwt",  # header and payload are both base64url JSON objects: "eyJ" = '{"'
        ("eyJ[A-Za-z0-9_-]{10,4000}\\.eyJ[A-Za-z0-9_-]{10,8000}\\.[A-Za-z0-9_-]{16,2000}" + _RBD,),
        not_after=_WD,
    ),
    # scheme://user:password@host — only the password is redacted. The match starts at "://"
    # (so it begins with a literal) and requires a scheme character just before it.
    _Rule(
        "url-password",
        (r"://(?<=[A-Za-z0-9+.-]://)[^\s:/?#@\[\]]{0,256}:(?P<VALUE>[^\s/?#@]{1,256})@",),
        skip=_is_placeholder_password,
    ),
)

SECRET_KINDS: tuple[str, ...] = tuple(rule.kind for rule in _RULES)

_RuleIndex = dict[str, tuple[_Rule, "str | None"]]


def _compile_rules(rules: tuple[_Rule, ...]) -> tuple[re.Pattern[str], _RuleIndex]:
    """One alternation of every pattern, each as ``<literal><guard>(?P<rI_J>rest)``."""
    branches: list[str] = []
    groups: _RuleIndex = {}
    for index, rule in enumerate(rules):
        for number, pattern in enumerate(rule.patterns):
            first, rest = pattern[0], pattern[1:]
            if first in "\\[](){}.*+?^$|" or rest[:1] in ("*", "+", "?", "{"):
                raise AssertionError(f"{rule.kind}: pattern must begin with a literal: {pattern}")
            name = f"r{index}_{number}"
            value_group = f"{name}v" if "(?P<VALUE>" in rest else None
            rest = rest.replace("(?P<VALUE>", f"(?P<{value_group}>")
            first = re.escape(first)
            guard = f"(?<![{rule.not_after}]{first})" if rule.not_after else ""
            branches.append(f"{first}{guard}(?P<{name}>{rest})")
            groups[name] = (rule, value_group)
    return re.compile("|".join(branches)), groups


_SECRETS, _GROUP_RULES = _compile_rules(_RULES)
_MAX_REDACTION_ROUNDS = 4


def redact_secrets(text: str) -> tuple[str, list[str]]:
    """Replace high-confidence secrets with ``[REDACTED:<kind>]``.

    Returns the new text and the kind of each redaction, in order of appearance (one entry per
    secret, so the same kind can repeat). Kinds are listed in :data:`SECRET_KINDS`. For
    ``aws-secret-access-key``, ``azure-storage-key`` and ``url-password`` only the value is
    replaced and the name (``aws_secret_access_key =``, ``scheme://user:``) is kept. Obvious
    placeholders (``ghp_xxxx…``, ``${PASSWORD}``) are left alone.

    A redaction can make a neighbouring token stand alone (``AIza…-`` glued to a PEM block),
    so the text is scanned again until nothing new is found: redacting the result finds nothing.
    """
    found: list[str] = []

    def replace(match: re.Match[str]) -> str:
        rule, value_group = _GROUP_RULES[match.lastgroup or ""]
        value = match.group(value_group) if value_group else match.group()
        if rule.skip is not None and rule.skip(value):
            return match.group()
        found.append(rule.kind)
        marker = REDACTION_MARKER.format(kind=rule.kind)
        if value_group is None:
            return marker
        whole = match.group()
        offset = match.start()
        value_start, value_end = match.span(value_group)
        return whole[: value_start - offset] + marker + whole[value_end - offset :]

    for _ in range(_MAX_REDACTION_ROUNDS):
        before = len(found)
        text = _SECRETS.sub(replace, text)
        if len(found) == before:
            break
    return text, found


# --------------------------------------------------------------------------------------------
# Binary sniffing and truncation
# --------------------------------------------------------------------------------------------


def looks_binary(data: bytes | bytearray | memoryview) -> bool:
    """True when ``data`` should not be shown as text.

    Looks at the first :data:`BINARY_SNIFF_BYTES` bytes: a NUL byte, or bytes that are not
    UTF-8, mean binary. A multi-byte character cut off at the end of the sample (or of a
    truncated download) does not. Empty data is text.
    """
    sample = bytes(data[:BINARY_SNIFF_BYTES])
    if b"\x00" in sample:
        return True
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return True
    return False


_SURROGATES = re.compile("[\ud800-\udfff]")
_NEWLINE_LOOKBACK_BYTES = 4096
# Left dangling at the end of a cut, these would be invisible characters in the output.
_DANGLING = re.compile(f"[{_JOINERS}{_VARIATION_SELECTORS}{_TAGS}]")


def truncate_utf8(text: str, max_bytes: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``max_bytes`` of UTF-8; return it and whether anything was cut.

    The cut falls on a character boundary, and goes back to just after the last newline when
    that loses at most a quarter of the budget (and at most 4 KiB), so a listing or source file
    ends on a whole line. A joiner, variation selector or tag left dangling at the cut is
    dropped too. Lone surrogates (not encodable) become U+FFFD, so the result is always valid
    UTF-8.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"max_bytes must be a non-negative integer, not {max_bytes!r}")
    if not text.isascii() and _SURROGATES.search(text):
        text = _SURROGATES.sub("\ufffd", text)
    if len(text) * 4 <= max_bytes:  # fits whatever the characters are
        return text, False
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text, False
    # Every character of ``text`` is valid, so "ignore" drops only a cut multi-byte tail.
    head = data[:max_bytes].decode("utf-8", "ignore")
    newline = head.rfind("\n")
    if newline >= 0:
        lookback = min(max_bytes // 4, _NEWLINE_LOOKBACK_BYTES)
        if len(head[newline + 1 :].encode("utf-8")) <= lookback:
            head = head[: newline + 1]
    end = len(head)
    while end and _DANGLING.match(head, end - 1):
        end -= 1
    return head[:end], True


# --------------------------------------------------------------------------------------------
# Both
# --------------------------------------------------------------------------------------------


class CleanText(NamedTuple):
    """The result of :func:`clean_text`."""

    text: str
    invisible_removed: int  # characters removed by strip_invisible
    redactions: tuple[str, ...]  # kind of each redacted secret, in order


_MAX_CLEAN_ROUNDS = 4


def clean_text(text: str) -> CleanText:
    """Strip invisible characters, then redact secrets; the result is stable under cleaning.

    Stripping comes first so a secret split by zero-width characters (``AKIA<ZWSP>…``) is
    joined and then recognised. Lone surrogates become U+FFFD (not counted). If a redaction
    orphans a variation selector (kept after the secret's last character), another round
    removes it, so ``clean_text(clean_text(x).text)`` changes nothing and finds nothing.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    if not text.isascii() and _SURROGATES.search(text):
        text = _SURROGATES.sub("\ufffd", text)
    removed = 0
    kinds: list[str] = []
    for _ in range(_MAX_CLEAN_ROUNDS):
        text, count = strip_invisible(text)
        removed += count
        text, found = redact_secrets(text)
        kinds.extend(found)
        if not found:
            break
    return CleanText(text, removed, tuple(kinds))
