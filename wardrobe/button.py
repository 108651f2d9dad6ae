"""The big button and its gestures: a press describes, a hold (1 s) gives details, a double press compares with
the garment before ("do these match?"), a long hold (3 s) records a voice label, a triple press says the help (its words: the language file's
[daemon] gestures). gpiozero does the pins."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)

PRESS, HOLD, DOUBLE, TRIPLE, RECORD = "press", "hold", "double", "triple", "record"
DOUBLE_S = 0.6
"""A second press released within this many seconds of the first is a double press (a third: triple)."""
RECORD_S = 3.0
"""Holding at least this long records a voice label for the last garment (a shorter hold: details)."""
SEQUENCE = (PRESS, DOUBLE, TRIPLE)
"""Quick presses in a row: each one is the next gesture of the same sequence."""


class PressQueue:
    """Hands events from callback threads to the main loop. One event waits at most: a later gesture of the same
    quick sequence (a press, then a double, then a triple) replaces it, anything else is dropped."""

    def __init__(self) -> None:
        self._waiting: str | None = None
        self._changed = threading.Condition()
        self.dropped = 0

    def put(self, event: str) -> bool:
        """Offer an event; False (and counted) if another one is already waiting."""
        with self._changed:
            waiting = self._waiting
            if waiting is not None and not (waiting in SEQUENCE and event in SEQUENCE
                                            and SEQUENCE.index(event) > SEQUENCE.index(waiting)):
                self.dropped += 1
                log.debug("dropped a %s: busy", event)
                return False
            self._waiting = event
            self._changed.notify()
            return True

    def get(self, timeout: float) -> str | None:
        """The next event, or None after timeout seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self._waiting is not None, timeout)
            event, self._waiting = self._waiting, None
            return event

    def clear(self) -> None:
        """Forget presses that arrived while busy (a double or triple stays: its first press was the busy one)."""
        with self._changed:
            if self._waiting not in (DOUBLE, TRIPLE):
                self._waiting = None


def gpio_device(make):
    """A gpiozero device from make(), without gpiozero's warnings on stderr: each pin library it tried and could
    not use (on a PC: four lines each) goes into the error when none could (one line in the journal), or into a
    debug line when one further down the list could; its fall back to software PWM is expected (the capture light
    needs no hardware PWM). Any other warning goes to the journal as a warning."""
    import warnings

    from gpiozero.exc import PinFactoryFallback, PWMSoftwareFallback

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            device = make()
        except Exception as e:
            tried = [str(w.message).removeprefix("Falling back from ") for w in caught
                     if issubclass(w.category, PinFactoryFallback)]
            if not tried:
                raise
            raise RuntimeError(f"{e} (tried {'; '.join(tried)})") from None
    for w in caught:
        expected = issubclass(w.category, PinFactoryFallback | PWMSoftwareFallback)
        log.log(logging.DEBUG if expected else logging.WARNING, "gpiozero: %s", w.message)
    return device


class GarmentButton:
    """A gpiozero Button: release before hold_time is a press, holding past it is a hold."""

    def __init__(self, pin: int | str, events: PressQueue, pull_up: bool = True, bounce_s: float = 0.05,
                 hold_s: float = 1.0, pin_factory=None, double_s: float = DOUBLE_S) -> None:
        import time

        from gpiozero import Button

        self.clock, self.double_s, self._last_release, self._quick = time.monotonic, double_s, -1e9, 0
        self.record_s, self._pressed_at = RECORD_S, 0.0
        self.events = events
        self.button = gpio_device(lambda: Button(pin, pull_up=pull_up, bounce_time=bounce_s, hold_time=hold_s,
                                                 pin_factory=pin_factory))
        self._held = False
        self.button.when_pressed = self._pressed
        self.button.when_held = self._on_hold
        self.button.when_released = self._released

    def _edge(self, since: float | None) -> float:
        """When the pin changed, on self.clock, from the pin's own timestamp of the edge: a callback that runs late
        on a busy CPU still measures the person's timing, not the scheduler's."""
        return self.clock() - (since or 0.0)

    def _pressed(self) -> None:
        self._held = False
        self._pressed_at = self._edge(self.button.active_time)

    def _on_hold(self) -> None:
        self._held = True

    def _released(self) -> None:
        now = self._edge(self.button.inactive_time)
        if self._held:  # a hold is told apart from a long hold when it ends
            self._last_release, self._quick = -1e9, 0
            self.events.put(RECORD if now - self._pressed_at >= self.record_s else HOLD)
            return
        self._quick = self._quick + 1 if now - self._last_release <= self.double_s else 1
        self._last_release = now
        if self._quick >= 3:
            self._quick, self._last_release = 0, -1e9  # a fourth quick press starts afresh
        self.events.put({1: PRESS, 2: DOUBLE}.get(self._quick, TRIPLE))

    def close(self) -> None:
        """Release the pin."""
        self.button.close()
