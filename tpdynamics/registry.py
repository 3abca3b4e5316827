"""One registry per family of variants: name -> class, with errors that list the valid names."""
from __future__ import annotations

from typing import Generic, Iterator, TypeVar

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """A name -> class mapping for one family of variants.

    ``get`` accepts a registered name or a subclass of ``base`` (so users can extend
    the family without editing the registry); anything else is a ``ValueError`` /
    ``TypeError`` that names the argument and lists the valid names.

    Parameters
    ----------
    family : str
        Human-readable family name used in error messages, e.g. ``"feedback form"``.
    base : type
        Common base class of the family.
    argument : str
        Name of the user-facing argument, used in error messages.
    """

    def __init__(self, family: str, base: type, argument: str):
        self.family = family
        self.base = base
        self.argument = argument
        self._classes: dict[str, type] = {}

    def register(self, name: str):
        """Class decorator adding ``cls`` under ``name`` (and setting ``cls.name``)."""

        def decorator(cls):
            if name in self._classes:
                raise ValueError(f"{self.family} {name!r} is already registered")
            if not issubclass(cls, self.base):
                raise TypeError(f"{cls.__name__} must subclass {self.base.__name__}")
            cls.name = name
            self._classes[name] = cls
            return cls

        return decorator

    def names(self) -> list[str]:
        return sorted(self._classes)

    def get(self, name_or_class, *, argument: str | None = None) -> type:
        """Return the class registered under a name, or the class itself if it is one of the family.

        ``argument`` overrides the argument name used in error messages.
        """
        argument = argument or self.argument
        if isinstance(name_or_class, type):
            if issubclass(name_or_class, self.base):
                return name_or_class
            raise TypeError(
                f"{argument}={name_or_class.__name__} is not a {self.base.__name__} subclass; "
                f"pass one of {', '.join(self.names())} or a subclass of {self.base.__name__}."
            )
        if not isinstance(name_or_class, str):
            raise TypeError(
                f"{argument} must be a name (str) or a {self.base.__name__} subclass, "
                f"got {type(name_or_class).__name__}."
            )
        try:
            return self._classes[name_or_class]
        except KeyError:
            raise ValueError(
                f"Unknown {self.family} {argument}={name_or_class!r}. "
                f"Valid names: {', '.join(self.names())}."
            ) from None

    def __contains__(self, name) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._classes)

    def __repr__(self) -> str:
        return f"Registry({self.family!r}: {', '.join(self.names())})"
