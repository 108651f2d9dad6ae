"""The big button: a short press describes, a long hold repeats in detail, a double press compares the garment
with the one before ("do these match?"). gpiozero does the pins."""

from __future__ import annotations

import logging
import queue

log = logging.getLogger(__name__)

PRESS, HOLD, DOUBLE = "press", "hold", "double"
DOUBLE_S = 0.6
"""A second press released within this many seconds of the first is a double press."""


class PressQueue:
    """Hands events from callback threads to the main loop; at most one waits, more are dropped."""

    def __init__(self) -> None:
        self.q: queue.Queue[str] = queue.Queue(maxsize=1)
        self.dropped = 0

    def put(self, event: str) -> bool:
        """Offer an event; False (and counted) if one is already waiting."""
        try:
            self.q.put_nowait(event)
            return True
        except queue.Full:
            self.dropped += 1
            log.debug("dropped a %s: busy", event)
            return False

    def get(self, timeout: float) -> str | None:
        """The next event, or None after timeout seconds."""
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            return None

    def clear(self) -> None:
        """Forget presses that arrived while busy (a double press stays: its first half was the busy press)."""
        keep = None
        while True:
            try:
                event = self.q.get_nowait()
            except queue.Empty:
                break
            keep = event if event == DOUBLE else keep
        if keep:
            self.q.put_nowait(keep)


class GarmentButton:
    """A gpiozero Button: release before hold_time is a press, holding past it is a hold."""

    def __init__(self, pin: int | str, events: PressQueue, pull_up: bool = True, bounce_s: float = 0.05,
                 hold_s: float = 1.0, pin_factory=None, double_s: float = DOUBLE_S) -> None:
        import time

        from gpiozero import Button

        self.clock, self.double_s, self._last_release = time.monotonic, double_s, -1e9
        self.events = events
        self.button = Button(pin, pull_up=pull_up, bounce_time=bounce_s, hold_time=hold_s, pin_factory=pin_factory)
        self._held = False
        self.button.when_pressed = self._pressed
        self.button.when_held = self._on_hold
        self.button.when_released = self._released

    def _pressed(self) -> None:
        self._held = False

    def _on_hold(self) -> None:
        self._held = True
        self.events.put(HOLD)

    def _released(self) -> None:
        if self._held:
            return
        now = self.clock()
        double = now - self._last_release <= self.double_s
        self._last_release = -1e9 if double else now  # a third quick press starts afresh
        self.events.put(DOUBLE if double else PRESS)

    def close(self) -> None:
        """Release the pin."""
        self.button.close()
