"""Variable interpolation exactly as docker compose does it.

``$VAR``, ``${VAR}``, ``${VAR:-default}`` (unset or empty), ``${VAR-default}`` (unset),
``${VAR:?message}`` / ``${VAR?message}`` (error), ``${VAR:+alt}`` / ``${VAR+alt}``
(alternative when set), and ``$$`` for a literal ``$``; a ``$`` that starts no reference
(``$(cmd)``, ``$1``, a final ``$``) stays as it is, as in compose v2. Defaults may contain further
``${...}``. One difference from compose, on purpose: a variable that is not set and has no
default is an error (compose substitutes an empty string with a warning).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

_NAME_START = "_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_NAME_CHARS = _NAME_START + "0123456789"
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationSyntaxError(ValueError):
    """The string is not a valid template; the message says why (never quotes the value)."""


@dataclass
class Result:
    value: str
    undefined: list[str] = field(default_factory=list)  # variables used with no value
    required: list[tuple[str, str]] = field(default_factory=list)  # (${VAR:?msg}: VAR, msg)
    used: bool = False  # whether any substitution happened


class _Parser:
    def __init__(self, text: str, lookup: Mapping[str, str], result: Result) -> None:
        self.text = text
        self.lookup = lookup
        self.result = result
        self.i = 0

    def name(self) -> str:
        start = self.i
        if self.i < len(self.text) and self.text[self.i] in _NAME_START:
            self.i += 1
            while self.i < len(self.text) and self.text[self.i] in _NAME_CHARS:
                self.i += 1
        return self.text[start : self.i]

    def run(self, *, until_brace: bool, evaluate: bool) -> str:
        out: list[str] = []
        t = self.text
        while self.i < len(t):
            c = t[self.i]
            if until_brace and c == "}":
                return "".join(out)
            if c != "$":
                out.append(c)
                self.i += 1
                continue
            self.i += 1
            c = t[self.i] if self.i < len(t) else ""
            if c == "$":
                out.append("$")
                self.i += 1
            elif c == "{":
                self.i += 1
                out.append(self.braced(evaluate=evaluate))
            elif c and c in _NAME_START:
                var = self.name()
                out.append(self.get(var, evaluate=evaluate))
            else:
                out.append("$")  # as compose: a `$` not starting a reference stays as it is
        if until_brace:
            raise InterpolationSyntaxError("a `${` is never closed with `}`")
        return "".join(out)

    def get(self, var: str, *, evaluate: bool) -> str:
        if not evaluate:
            return ""
        self.result.used = True
        if var in self.lookup:
            return self.lookup[var]
        if var not in self.result.undefined:
            self.result.undefined.append(var)
        return ""

    def braced(self, *, evaluate: bool) -> str:
        var = self.name()
        if not var:
            raise InterpolationSyntaxError(
                "`${` must be followed by a variable name like ${NAME}; write `$$` for a "
                "literal `$`"
            )
        t = self.text
        if self.i >= len(t):
            raise InterpolationSyntaxError(f"`${{{var}` is never closed with `}}`")
        if t[self.i] == "}":
            self.i += 1
            return self.get(var, evaluate=evaluate)
        op = next((o for o in _OPERATORS if t.startswith(o, self.i)), None)
        if op is None:
            raise InterpolationSyntaxError(
                f"invalid character after `${{{var}`; expected `}}` or one of :- - :? ? :+ +"
            )
        end = self.closing(self.i - len(var) - 2)
        self.i += len(op)
        is_set = var in self.lookup
        value = self.lookup.get(var, "")
        empty_counts = op.startswith(":")
        missing = (not is_set) or (empty_counts and value == "")
        if evaluate:
            self.result.used = True
        if op in (":-", "-"):
            word = self.word(end, evaluate=evaluate and missing)
            out = word if missing else value
        elif op in (":?", "?"):
            word = self.word(end, evaluate=evaluate and missing)
            if evaluate and missing:
                self.result.required.append((var, word))
            out = "" if missing else value
        else:  # ":+", "+"
            word = self.word(end, evaluate=evaluate and not missing)
            out = "" if missing else word
        self.i = end + 1  # past the closing brace
        return out if evaluate else ""

    def closing(self, start: int) -> int:
        """Where the ``}`` closing the reference with an operator at ``start`` stands, as
        compose finds it: its pattern runs to the last ``}`` of the line, then the first
        brace that closes every ``{`` before it ends the reference (each ``{`` counts and
        the character after it is skipped, as compose counts them); when none does, that
        last ``}``. ``${X:-{}}`` is X's value with X set, never X's value and a ``}``."""
        t = self.text
        line_end = t.find("\n", start)
        last = t.rfind("}", start, len(t) if line_end < 0 else line_end)
        if last < 0:
            raise InterpolationSyntaxError("a `${` is never closed with `}` on its line")
        depth = 0
        i = start
        while i <= last:
            if t[i] == "}":
                depth -= 1
                if depth == 0:
                    return i
            if t[i] == "{":
                depth += 1
                i += 1
            i += 1
        return last

    def word(self, end: int, *, evaluate: bool) -> str:
        """The default, message or alternative up to ``end``, itself a template."""
        sub = _Parser(self.text[self.i : end], self.lookup, self.result)
        return sub.run(until_brace=False, evaluate=evaluate)


def interpolate(text: str, lookup: Mapping[str, str]) -> Result:
    """Expand ``text``; raises InterpolationSyntaxError for malformed templates."""
    result = Result("")
    if "$" not in text:
        result.value = text
        return result
    result.value = _Parser(text, lookup, result).run(until_brace=False, evaluate=True)
    return result
