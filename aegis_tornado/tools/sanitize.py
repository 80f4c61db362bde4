"""Output hygiene for text that is returned to a model.

Repository content is written by people we do not control, and what we return is read by a
model and possibly by a third party. Two things are removed before it leaves:

- **Invisible characters** (:func:`strip_invisible`): text a human reviewer cannot see but a
  model reads — zero-width characters, bidi overrides ("Trojan Source"), Unicode tag characters
  ("ASCII smuggling"), variation selectors that choose no presentation ("emoji smuggling": one
  selector after every character spells out a hidden message), line/paragraph separators,
  the braille blank and private-use characters — are the carrier of hidden prompt injections.
  Visible text (CJK, accents, emoji sequences) is kept intact.
- **Credentials** (:func:`redact_secrets`, in :mod:`.secrets`): ~220 documented formats plus
  secret-ish assignments, and the server's own secrets (the Gitea token) in every encoding
  (:func:`redact_withheld`). A redacted secret becomes ``[REDACTED:<kind>]``
  (:data:`REDACTION_MARKER`).

:func:`clean_text` does both; :func:`truncate_utf8` and :func:`looks_binary` size and sniff
content. Clean *before* truncating: a token cut in half no longer looks like a token.

Everything here runs in time linear in its input (tested with adversarial inputs).
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata
from typing import NamedTuple

from .secrets import (
    REDACTION_MARKER,
    SECRET_KINDS,
    redact_secrets,
    redact_withheld,
)

__all__ = [
    "BINARY_SNIFF_BYTES",
    "REDACTION_MARKER",
    "SECRET_KINDS",
    "CleanText",
    "clean_text",
    "looks_binary",
    "redact_secrets",
    "redact_withheld",
    "strip_invisible",
    "truncate_utf8",
]

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
    "\u2028\u2029"  # LINE/PARAGRAPH SEPARATOR: invisible breaks most viewers do not draw
    "\u2800"  # BRAILLE PATTERN BLANK: looks like a space, is not whitespace to filters
    "\ue000-\uf8ff"  # private use: no meaning a reader can see; fonts may draw anything
    "\ufe00-\ufe0d"  # VARIATION SELECTOR-1..14: no emoji presentation; a run of them is data
    "\ufeff"  # BOM / ZERO WIDTH NO-BREAK SPACE, anywhere
    "\uffa0"  # HALFWIDTH HANGUL FILLER
    "\ufff0-\ufffb"  # reserved default-ignorables, interlinear annotation (hides text)
    "\U00013430-\U0001343f"  # Egyptian hieroglyph format controls
    "\U0001bca0-\U0001bca3"  # shorthand format controls
    "\U0001d173-\U0001d17a"  # musical symbol format controls
    "\U000e0000-\U000e001f"  # LANGUAGE TAG and reserved
    "\U000e0080-\U000e00ff"  # reserved
    "\U000e0100-\U000e01ef"  # VARIATION SELECTOR-17..256 (ideographic variants; smuggling)
    "\U000e01f0-\U000e0fff"  # reserved
    "\U000f0000-\U000ffffd\U00100000-\U0010fffd"  # supplementary private use
)
# Kept in context (see _resolve_run), otherwise removed:
_JOINERS = "\u200c\u200d\u180e"  # ZWNJ, ZWJ, MONGOLIAN VOWEL SEPARATOR
#: VS15/VS16 (text/emoji presentation) and the Mongolian free variation selectors; the other
#: variation selectors are always removed.
_VARIATION_SELECTORS = "\u180b-\u180d\u180f\ufe0e\ufe0f"
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
_NONE, _ASCII_BASE, _OTHER_BASE, _ATTACHED, _JOINED, _EMOJI_BASE, _MONGOLIAN_BASE = range(7)
_NON_ASCII_BASES = frozenset((_OTHER_BASE, _EMOJI_BASE, _MONGOLIAN_BASE))
#: Characters that have an emoji presentation to choose (Unicode's Emoji property, by block:
#: the symbols and pictographs emoji-variation-sequences.txt draws its bases from). VS15/VS16
#: after anything else — an ideograph, a letter — choose nothing and are removed.
_EMOJI_CAPABLE = re.compile(
    "[\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a\u231b\u2328"
    "\u23cf\u23e9-\u23f3\u23f8-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe"
    "\u2600-\u27bf\u2934\u2935\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55\u3030\u303d\u3297"
    "\u3299\U0001f000-\U0001faff]"
)
_ONLY_REMOVED = re.compile(f"[{_ALWAYS_REMOVED}]+")
#: The ASCII characters among the candidates: C0 controls but tab, LF, VT, FF, CR; and DEL.
_ASCII_CONTROLS = tuple(chr(c) for c in (*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F))
_ASCII_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")


def _base_kind(ch: str | None) -> int:
    """What a visible neighbour ``ch`` (never itself a candidate) is as a base."""
    if ch is None or ch.isspace() or unicodedata.category(ch) in ("Cc", "Cs"):
        return _NONE
    if ch < "\x80":
        return _ASCII_BASE
    if _EMOJI_CAPABLE.match(ch):
        return _EMOJI_BASE
    return _MONGOLIAN_BASE if "\u1800" <= ch <= "\u18af" else _OTHER_BASE


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
    - Variation selector: U+FE0E/U+FE0F kept only as the first one after an emoji-capable
      character or after ``# * 0-9`` (keycaps); a Mongolian free variation selector only after
      a Mongolian letter. One per base: a run of them carries data. (The other selectors are
      never candidates here: they are always removed.)
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
            if ch in _EMOJI_VS:
                keep = prev == _EMOJI_BASE or (prev == _ASCII_BASE and before in _KEYCAP_BASES)
            else:  # a Mongolian free variation selector
                keep = prev == _MONGOLIAN_BASE
            if keep:
                kept.append(ch)
                prev = _ATTACHED
        elif ch in _JOINER_SET:
            after_virama = i == 0 and isinstance(before, str) and unicodedata.combining(before) == 9
            if (
                single_joiner
                and i == n - 1
                and (
                    after_virama
                    or (
                        (prev in _NON_ASCII_BASES or prev == _ATTACHED)
                        and after in _NON_ASCII_BASES
                    )
                )
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
    variation selectors 1-14 and 17-256 (U+FE00-U+FE0D, U+E0100-U+E01EF), line and paragraph
    separators (U+2028, U+2029), the braille blank (U+2800), private-use characters, other
    format characters (Cf) and reserved default-ignorable code points, and the C0/C1 control
    characters except tab, newline, vertical tab, form feed and carriage return.

    Kept: all visible text, ordinary whitespace, the visible Cf "number signs" of Arabic,
    Syriac and Kaithi, and — only where they are part of visible text — one VS15/VS16 after an
    emoji-capable character or a keycap base, ZWJ/ZWNJ between non-ASCII characters (emoji
    sequences, Persian, Indic scripts) and the tag sequences of the England/Scotland/Wales
    flags.
    """
    if text.isascii():
        # Only ASCII controls can be invisible here; looking for each is far cheaper than the
        # general pattern, which costs ~25 ns a character even on plain ASCII. A short text
        # (a name, a title) is cheaper to check in one pass than in 27.
        if len(text) < 256:
            if not _ASCII_CONTROL.search(text):
                return text, 0
        elif not any(control in text for control in _ASCII_CONTROLS):
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


def clean_text(text: str, withheld: tuple[str, ...] = ()) -> CleanText:
    """Strip invisible characters, then redact secrets; the result is stable under cleaning.

    ``withheld`` are the server's own secrets (the Gitea token): each is redacted as
    ``gitea-token`` in every form :func:`~.secrets.withheld_forms` lists (plain, base64,
    base64url, hex, percent-encoded), before the other rules run.

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
        if withheld:
            text, own = redact_withheld(text, withheld)
            kinds.extend(["gitea-token"] * own)
        text, found = redact_secrets(text)
        kinds.extend(found)
        if not found:
            break
    return CleanText(text, removed, tuple(kinds))
