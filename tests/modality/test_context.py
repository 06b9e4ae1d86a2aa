"""The typed run context: a plugin's own state under typed keys, the core's values as fields."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from framework import RunContext, Stash, StashKey


def _ctx(tmp_path: Path) -> RunContext[dict, None]:
    return RunContext(run_dir=tmp_path, modality={}, model=None, data=None, seed=0, plugins=None)  # type: ignore[arg-type]


def test_stash_keys_are_distinct_by_identity_not_by_name() -> None:
    stash = Stash()
    mine, theirs = StashKey[int]("store"), StashKey[int]("store")
    stash[mine] = 1
    assert mine in stash and theirs not in stash
    assert stash.get(theirs) is None and stash.get(theirs, 7) == 7
    stash[theirs] = 2
    assert (stash[mine], stash[theirs]) == (1, 2)


def test_stash_setdefault_keeps_the_first_value_and_missing_keys_name_themselves() -> None:
    stash, key = Stash(), StashKey[list[int]]("cache")
    first = stash.setdefault(key, [1])
    assert stash.setdefault(key, [2]) is first
    del stash[key]
    with pytest.raises(KeyError, match="'cache' is not in the run's stash"):
        stash[key]


def test_each_context_has_its_own_stash(tmp_path: Path) -> None:
    a, b, key = _ctx(tmp_path), _ctx(tmp_path), StashKey[str]("x")
    a.stash[key] = "a"
    assert key not in b.stash


def test_extras_still_works_for_one_release_with_a_warning_naming_the_replacement(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ctx.classes = ["cat", "dog"]
    ctx.allowed_targets = ["mypkg"]
    with pytest.warns(DeprecationWarning, match="ctx.stash"):
        extras = ctx.extras
    assert extras["classes"] == ["cat", "dog"] and extras["allowed_targets"] == ["mypkg"]
    extras["mine"] = 3  # what an old plugin wrote, it reads back later
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert ctx.extras["mine"] == 3
