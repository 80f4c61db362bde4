"""Write ``generated.jsonl``: one synthetic true secret per vendor format, in a line of text.

Run it when :mod:`aegis_tornado.tools.secret_formats` changes:
``.venv/bin/python tests/tools/secrets_corpus/generate.py``. It is not run by the tests: the
corpus is data, fixed and reviewed like any other test data (seeded, so a rerun is stable).

Each sample is drawn from the format's own pattern (random characters from each class, lengths
within the bounds), the way gitleaks' own rule tests generate theirs. A sample is kept only if
it is random enough to be a real secret (not a placeholder, entropy above the format's minimum)
and its format recognises it; whether the *redactor* catches it is what the tests measure.
"""

from __future__ import annotations

import json
import random
import re
import string
import sys
from pathlib import Path
from re import _constants as c  # type: ignore[attr-defined]
from re import _parser as parser  # type: ignore[attr-defined]

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[2]))

from aegis_tornado.tools.secret_formats import VENDOR_FORMATS  # noqa: E402
from aegis_tornado.tools.secrets import is_placeholder, shannon_entropy  # noqa: E402

_CATEGORIES = {
    c.CATEGORY_DIGIT: string.digits,
    c.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    c.CATEGORY_SPACE: " ",
    c.CATEGORY_NOT_SPACE: string.ascii_letters + string.digits + "!#%&*+-./:=?@^_~",
}
_ANY = string.ascii_letters + string.digits


def _class_chars(items: list) -> str:
    chars: list[str] = []
    negate = False
    for op, av in items:
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            chars.append(chr(av))
        elif op is c.RANGE:
            chars.extend(chr(i) for i in range(av[0], av[1] + 1) if i < 0x7F)
        elif op is c.CATEGORY:
            chars.extend(_CATEGORIES.get(av, "a"))
    if negate:
        return "".join(ch for ch in " ;\n\"'" if ch not in chars) or "#"
    # Newlines inside a secret class (jwt-base64's wrapped lines) would only make noise.
    return "".join(ch for ch in chars if ch not in "\r\n") or "a"


def _sample(pattern, rng: random.Random, groups: dict[int, str]) -> str:
    out: list[str] = []
    for op, av in pattern:
        if op is c.LITERAL:
            out.append(chr(av))
        elif op is c.NOT_LITERAL:
            out.append("a" if av != ord("a") else "b")
        elif op is c.IN:
            out.append(rng.choice(_class_chars(av)))
        elif op is c.ANY:  # gitleaks sometimes writes "." for a literal dot: half the time, one
            out.append("." if rng.random() < 0.5 else rng.choice(_ANY))
        elif op is c.CATEGORY:
            out.append(rng.choice(_CATEGORIES.get(av, "a")))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            low, high, sub = av
            if high == c.MAXREPEAT:
                high = low + 16
            count = low if low == high or low == 0 else rng.randint(low, min(high, low + 12))
            out.extend(_sample(sub, rng, groups) for _ in range(count))
        elif op is c.SUBPATTERN:
            group, _add, _del, sub = av
            text = _sample(sub, rng, groups)
            if group:
                groups[group] = text
            out.append(text)
        elif op is c.BRANCH:
            out.append(_sample(rng.choice(av[1]), rng, groups))
        elif op is c.GROUPREF:
            out.append(groups.get(av, ""))
        # AT (anchors, \b), ASSERT and ASSERT_NOT add nothing
    return "".join(out)


def sample(
    kind: str, keywords: tuple[str, ...], pattern: str, entropy: float, rng: random.Random
) -> dict | None:
    compiled = re.compile(pattern)
    parsed = parser.parse(pattern)
    for _ in range(500):
        body = _sample(parsed, rng, {})
        text = f"config {body}\n"
        if keywords and not any(k in text.lower() for k in keywords):
            text = f"{keywords[0]}: {body}\n"  # the format is only looked for next to one
        match = compiled.search(text)
        if match is None:
            continue
        secret = next((g for g in match.groups() if g), match.group()) if match.groups() else body
        if "\n" in secret or is_placeholder(secret) or shannon_entropy(secret) < entropy:
            continue
        return {"kind": kind, "text": text, "secret": secret}
    return None


def main() -> None:
    rng = random.Random(20261204)
    rows = []
    for fmt in VENDOR_FORMATS:
        row = sample(fmt.kind, fmt.keywords, fmt.pattern, fmt.entropy, rng)
        if row is None:
            print(f"no sample for {fmt.kind}", file=sys.stderr)
            continue
        rows.append(row)
    with open(HERE / "generated.jsonl", "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} samples for {len(VENDOR_FORMATS)} formats")


if __name__ == "__main__":
    main()
