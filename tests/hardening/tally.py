"""Counts the hostile corpus reports at the end of the run (see ``conftest.pytest_terminal_summary``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    tried: int = 0
    refused: int = 0
    side_effects: int = 0
    cli_tried: int = 0
    cli_refused: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"hostile corpus: {self.tried} cases tried, {self.refused} refused, "
            f"{self.side_effects} side effects observed; CLI: {self.cli_tried} tried, {self.cli_refused} refused"
        )


TALLY = Tally()
