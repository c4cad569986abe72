"""Repairing the commonest slips of small models in agent code: unbalanced brackets and escaped quotes.

A 1.5B model that writes a long nested literal (a list of slide dicts) often closes one bracket too many or too few
(``...]}]}, filename=...)``), or escapes the quotes that delimit its strings (``['a.\\']}, {'b': [\\'c\\']}``).
smolagents then refuses the whole step, the model (greedy) writes the same slip again, and the run ends without a deck.
`balance_brackets` drops closing brackets that match nothing open, inserts closers that were skipped, and closes what
is left open at the end, outside strings and comments; `repair_code` also tries the code with escaped quotes
unescaped. A repair is used only when the original does not parse and the repaired code does.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {v: k for k, v in OPENERS.items()}


@dataclass(frozen=True)
class CodeRepair:
    """The repaired code and what was changed, in words for the model and the run log."""

    code: str
    changes: tuple[str, ...]

    def note(self) -> str:
        return ("Note: your code did not parse and was run after this repair: " + "; ".join(self.changes)
                + ". Write balanced brackets and unescaped quotes next time.")


def _string_end(code: str, start: int) -> int:
    """Index just past the string literal whose opening quote is at `start` (len(code) if it never closes)."""
    quote = code[start:start + 3] if code[start:start + 3] in ('"""', "'''") else code[start]
    i = start + len(quote)
    while i < len(code):
        if code[i] == "\\":
            i += 2
            continue
        if code.startswith(quote, i):
            return i + len(quote)
        if len(quote) == 1 and code[i] == "\n":  # an unterminated one-line string ends at the line's end
            return i
        i += 1
    return len(code)


def _line_of(code: str, index: int) -> int:
    return code.count("\n", 0, index) + 1


def balance_brackets(code: str) -> CodeRepair | None:
    """The code with its brackets balanced, or None if it already parses or the repair does not make it parse."""
    try:
        ast.parse(code)
        return None
    except SyntaxError:
        pass
    out: list[str] = []
    stack: list[str] = []
    changes: list[str] = []
    i = 0
    while i < len(code):
        char = code[i]
        if char in "'\"":
            end = _string_end(code, i)
            out.append(code[i:end])
            i = end
            continue
        if char == "#":
            end = code.find("\n", i)
            end = len(code) if end < 0 else end
            out.append(code[i:end])
            i = end
            continue
        if char in OPENERS:
            stack.append(char)
        elif char in CLOSERS:
            opener = CLOSERS[char]
            if stack and stack[-1] == opener:
                stack.pop()
            elif opener in stack:  # closers were skipped: insert them before this one
                while stack[-1] != opener:
                    missing = OPENERS[stack.pop()]
                    out.append(missing)
                    changes.append(f"added a missing {missing!r} on line {_line_of(code, i)}")
                stack.pop()
            else:
                changes.append(f"removed an unmatched {char!r} on line {_line_of(code, i)}")
                i += 1
                continue
        out.append(char)
        i += 1
    if stack:
        closing = "".join(OPENERS[c] for c in reversed(stack))
        out.append(closing)
        changes.append(f"closed {closing!r} at the end")
    repaired = "".join(out)
    if not changes:
        return None
    try:
        ast.parse(repaired)
    except SyntaxError:
        return None
    return CodeRepair(repaired, tuple(changes))


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def repair_code(code: str) -> CodeRepair | None:
    """The code repaired so that it parses (brackets first, then escaped quotes, then both), or None if it already
    parses or no repair makes it parse."""
    if _parses(code):
        return None
    repair = balance_brackets(code)
    if repair is not None:
        return repair
    unescaped = code.replace("\\'", "'").replace('\\"', '"')
    if unescaped == code:
        return None
    escaped = code.count("\\'") + code.count('\\"')
    change = f"unescaped {escaped} quote(s) written with a backslash"
    if _parses(unescaped):
        return CodeRepair(unescaped, (change,))
    repair = balance_brackets(unescaped)
    return CodeRepair(repair.code, (change, *repair.changes)) if repair is not None else None
