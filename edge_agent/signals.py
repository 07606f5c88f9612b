"""What the gate's outputs do for each verdict (pure; drivers/outputs.py drives the pins).

| verdict                                   | LED + buzzer (drivers/outputs.py PATTERNS) | relay |
|-------------------------------------------|---------------------------------------------|-------|
| accepted, no warning                      | ``accept``: green 1.5 s, one beep           | pulse |
| accepted with a warning (capacity, QR≠chip)| ``warn``: amber 2 s, two beeps             | pulse |
| already counted (repeat in the dedupe window) | ``warn``: amber 2 s, two beeps          | pulse |
| rejected, refused, not recorded           | ``reject``: red 2 s, three beeps            | —     |

The relay (the turnstile) pulses only at heritage gates, for ``outputs.relay_pulse_s``. It pulses
again on a repeat inside the dedupe window: the visitor who did not get through can tap again and
is let through without a second count.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.flows import Outcome, Verdict


@dataclass(frozen=True, slots=True)
class OutputPlan:
    signal: str
    """``accept`` | ``warn`` | ``reject``."""
    relay: bool


def plan_for(verdict: Verdict, *, gate: bool) -> OutputPlan:
    """The outputs for ``verdict``; ``gate``: the device has a turnstile to release."""
    outcome = verdict.outcome
    if outcome is Outcome.ALREADY_COUNTED:
        return OutputPlan("warn", relay=gate)
    if outcome is Outcome.SELECTED:
        return OutputPlan("accept", relay=False)
    if outcome is Outcome.ACCEPTED:
        return OutputPlan("warn" if verdict.warnings else "accept", relay=gate)
    return OutputPlan("reject", relay=False)
