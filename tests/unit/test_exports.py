"""`onair.__all__` is the public surface: sorted, complete, and every name importable."""

from __future__ import annotations

import types

import onair


def test_all_is_sorted_and_unique() -> None:
    assert onair.__all__ == sorted(set(onair.__all__))


def test_every_exported_name_exists() -> None:
    missing = [name for name in onair.__all__ if not hasattr(onair, name)]
    assert missing == []


def test_every_public_name_is_exported() -> None:
    for name in onair.__all__:  # names are loaded on first use
        getattr(onair, name)
    public = {
        name
        for name, value in vars(onair).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in ("annotations", "TYPE_CHECKING", "Any")
    }
    assert public == set(onair.__all__)


def test_exported_members_say_they_are_onair_s() -> None:
    """Classes come from onair's own modules, not from a dependency re-exported by mistake."""
    foreign = [
        name
        for name in onair.__all__
        if not getattr(getattr(onair, name), "__module__", "onair").startswith("onair")
    ]
    assert foreign == []
