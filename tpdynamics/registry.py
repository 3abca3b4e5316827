"""One registry per family of variants: name -> class, with errors that list the valid names."""
from __future__ import annotations

import inspect
from typing import Generic, Iterator, TypeVar

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """A name -> class mapping for one family of variants.

    ``get`` accepts a registered name or a subclass of ``base`` (so users can extend the family
    without editing the registry) and, where the family allows it (``instances=True``), a configured
    instance of ``base`` (e.g. ``AndersonSolver(memory=3)``); anything else is a ``ValueError`` /
    ``TypeError`` that names the argument and lists the valid names. ``create`` turns any of them into
    an instance.

    Parameters
    ----------
    family : str
        Human-readable family name used in error messages, e.g. ``"feedback form"``.
    base : type
        Common base class of the family.
    argument : str
        Name of the user-facing argument, used in error messages.
    instances : bool
        Whether a configured instance of ``base`` may stand for a variant (families whose objects are
        built by the caller from other data, such as feedback forms, say no).
    """

    def __init__(self, family: str, base: type, argument: str, *, instances: bool = False):
        self.family = family
        self.base = base
        self.argument = argument
        self.instances = bool(instances)
        self._classes: dict[str, type] = {}

    def register(self, name: str):
        """Class decorator adding ``cls`` under ``name`` (and setting ``cls.name``).

        The class must subclass ``base`` and fill every abstract hook of it.
        """

        def decorator(cls):
            if name in self._classes:
                raise ValueError(f"{self.family} {name!r} is already registered")
            if not isinstance(cls, type) or not issubclass(cls, self.base):
                raise TypeError(f"{getattr(cls, '__name__', cls)} must subclass {self.base.__name__}")
            if inspect.isabstract(cls):
                missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
                raise TypeError(f"{cls.__name__} cannot be registered as {self.family} {name!r}: it does not "
                                f"implement the abstract hook(s) {missing} of {self.base.__name__}.")
            cls.name = name
            self._classes[name] = cls
            return cls

        return decorator

    def unregister(self, name: str) -> type:
        """Remove ``name`` from the registry and return its class (e.g. to undo a registration in a test)."""
        try:
            return self._classes.pop(name)
        except KeyError:
            raise ValueError(f"{self.family} {name!r} is not registered. Registered: {', '.join(self.names())}.") \
                from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._classes)

    def get(self, name_or_class, *, argument: str | None = None):
        """The variant a user's argument names.

        A registered name gives its class, a subclass of ``base`` is returned as is, and (with
        ``instances=True``) so is a configured instance of ``base``. ``argument`` overrides the
        argument name used in error messages.
        """
        argument = argument or self.argument
        if isinstance(name_or_class, type):
            if issubclass(name_or_class, self.base):
                return name_or_class
            raise TypeError(
                f"{argument}={name_or_class.__name__} is not a {self.base.__name__} subclass; "
                f"pass one of {', '.join(self.names())} or a subclass of {self.base.__name__}."
            )
        if isinstance(name_or_class, self.base):
            if self.instances:
                return name_or_class
            raise TypeError(
                f"{argument} must be a name or a {self.base.__name__} subclass, not an instance "
                f"({type(name_or_class).__name__}(...)); pass e.g. {argument}={type(name_or_class).__name__}."
            )
        if not isinstance(name_or_class, str):
            instance = f", or a {self.base.__name__} instance" if self.instances else ""
            raise TypeError(
                f"{argument} must be a name (str) or a {self.base.__name__} subclass{instance}, "
                f"got {type(name_or_class).__name__}."
            )
        try:
            return self._classes[name_or_class]
        except KeyError:
            raise ValueError(
                f"Unknown {self.family} {argument}={name_or_class!r}. "
                f"Valid names: {', '.join(self.names())}."
            ) from None

    def create(self, name_or_class, *, argument: str | None = None, **kwargs):
        """An instance of the variant: ``cls(**kwargs)`` for a name or a class, a configured instance as is.

        Raises ``ValueError`` when keyword arguments come with an instance (it is already configured).
        """
        variant = self.get(name_or_class, argument=argument)
        if isinstance(variant, type):
            return variant(**kwargs)
        if kwargs:
            raise ValueError(f"{argument or self.argument}={type(variant).__name__}(...) is already configured; pass "
                             f"{', '.join(sorted(kwargs))} to its constructor, or pass a name or class instead.")
        return variant

    def __contains__(self, name) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._classes)

    def __repr__(self) -> str:
        return f"Registry({self.family!r}: {', '.join(self.names())})"
