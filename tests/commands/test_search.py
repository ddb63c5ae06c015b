"""What ``supervisor search`` records about how it was started."""

from __future__ import annotations

import pytest

from supervisor.commands.search import redacted_command


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (
            "supervisor search s.yaml --storage postgresql://u:secret@h/db --workers 2",
            "supervisor search s.yaml --storage 'postgresql://u:***@h/db' --workers 2",
        ),
        (
            "supervisor search s.yaml --storage=postgresql://u:secret@h:5432/db",
            "supervisor search s.yaml '--storage=postgresql://u:***@h:5432/db'",
        ),
        (
            "supervisor search 'my space.yaml' --trials 3",
            "supervisor search 'my space.yaml' --trials 3",
        ),
    ],
)
def test_the_recorded_command_never_holds_a_password(command: str, shown: str) -> None:
    assert redacted_command(command) == shown
    assert "secret" not in redacted_command(command)
