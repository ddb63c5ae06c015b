"""Helpers of supervisor/errors.py that stand in for newer Pythons."""

from __future__ import annotations

import sys

import pytest

from supervisor.errors import add_note


@pytest.mark.parametrize("version", [(3, 10, 14), sys.version_info])
def test_add_note_keeps_the_note_on_every_supported_python(
    version: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    # requires-python allows 3.10, which has no BaseException.add_note.
    monkeypatch.setattr(sys, "version_info", version)
    exc = ConnectionError("Connection refused")
    add_note(exc, "(tried again for 2 s)")
    add_note(exc, "second")
    assert exc.__notes__ == ["(tried again for 2 s)", "second"]
