"""Parameters: the one declaration of each parameter's name, default and allowed values.

A unit declares its parameters once, as ``Param`` objects: the numerics model's in
``golden.params``, the array's shape in ``fp8hw.arrays``, a hardware unit's own (such as
``pipeline``) on its component class. The components, the golden model, the unit registry
and the vector-file commands all check values through those objects, so a limit cannot
differ between them. As in amaranth-stdio's ``check_parameters``, a value of the wrong type
raises TypeError and a wrong value raises ValueError (``ParameterError``), each naming the
parameter and what is allowed.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fp8hw.errors import Fp8hwError


class ParameterError(Fp8hwError, ValueError):
    """A parameter value outside the allowed ones, or an unknown parameter."""


@dataclass(frozen=True)
class Param:
    """An integer parameter in ``lo..hi``, or one of the names in ``choices``; an
    ``optional`` one may also be absent (``None``, its default; ``none`` on a command
    line)."""
    name: str
    default: int | str | None
    help: str
    lo: int | None = None
    hi: int | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False

    def __post_init__(self):
        if bool(self.choices) == (self.lo is not None and self.hi is not None):
            raise ValueError(f"parameter {self.name}: give either choices or lo and hi")
        self.check(self.default)

    @property
    def allowed(self) -> str:
        """``one of os, ws`` or ``an integer in 1..64``."""
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        return f"an integer in {self.lo}..{self.hi}"

    def describe(self) -> str:
        """``name=os|ws (default os)``, for listings."""
        values = "|".join(self.choices) if self.choices else f"{self.lo}..{self.hi}"
        if self.optional:
            values += "|none"
        default = "none" if self.default is None else self.default
        return f"{self.name}={values} (default {default})"

    def check(self, value, owner: str = ""):
        """``value`` if it is allowed (an integer as ``int``)."""
        where = f"{owner}: " if owner else ""
        if value is None and self.optional:
            return None
        if self.choices:
            if not isinstance(value, str):
                raise TypeError(f"{where}parameter {self.name} must be {self.allowed}, "
                                f"got {value!r}")
            if value not in self.choices:
                raise ParameterError(f"{where}parameter {self.name} must be {self.allowed}, "
                                     f"got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{where}parameter {self.name} must be {self.allowed}, "
                            f"got {value!r}")
        if not self.lo <= value <= self.hi:
            raise ParameterError(f"{where}parameter {self.name}={value} is outside the "
                                 f"allowed range {self.lo}..{self.hi}")
        return int(value)

    def parse(self, text: str, owner: str = ""):
        """The value written as ``text`` on a command line (integers in any base ``int``
        reads, such as 0x10); ParameterError when it is not allowed."""
        if self.optional and str(text) == "none":
            return None
        if self.choices:
            return self.check(str(text), owner)
        try:
            value = int(str(text), 0)
        except ValueError:
            where = f"{owner}: " if owner else ""
            raise ParameterError(f"{where}parameter {self.name} must be {self.allowed}, "
                                 f"got {text!r}") from None
        return self.check(value, owner)


def resolve_parameters(params: Iterable[Param], texts: Mapping[str, str],
                       owner: str = "") -> dict:
    """The defaults of ``params`` with the command-line ``texts`` (name -> text) parsed
    over them; ParameterError for an unknown name or a value that is not allowed."""
    params = {p.name: p for p in params}
    for name in texts:
        if name not in params:
            raise ParameterError(f"{owner}: unknown parameter {name!r} "
                                 f"(parameters: {', '.join(params) or 'none'})")
    return {name: p.parse(texts[name], owner) if name in texts else p.default
            for name, p in params.items()}
