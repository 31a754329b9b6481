"""Every environment installs from a lock (locks/compile.py): each lock pins every requirement
pyproject.toml gives it, inside its range, with hashes, so a change to pyproject.toml without
`make lock` fails here rather than installing something untested in CI."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from locks.compile import LOCKS, Lock, pins


@pytest.mark.parametrize("lock", LOCKS, ids=lambda lock: lock.name)
def test_a_lock_pins_every_requirement_within_its_range_with_hashes(lock: Lock):
    locked = {canonicalize_name(name): pinned for name, pinned in pins(lock.path).items()}
    for line in lock.requirements():
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in {lock.path.name}: run `make lock`"
        version, _ = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), f"{name}=={version}: make lock"
    assert all(hashes for _, hashes in locked.values())


def test_ci_installs_the_dev_lock_with_hashes_and_the_package_without_its_dependencies():
    makefile = (LOCKS[0].path.parents[1] / "Makefile").read_text()
    assert "--require-hashes -r locks/dev.txt" in makefile
    assert "--no-deps -e ." in makefile
