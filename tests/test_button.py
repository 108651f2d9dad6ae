"""The button's gestures on gpiozero's own MockFactory pins, including a busy CPU that runs callbacks late."""

from __future__ import annotations

import threading
import time

import pytest
from gpiozero.pins.mock import MockFactory
from gpiozero.pins.pi import PiPin

from wardrobe.button import DOUBLE, HOLD, PRESS, RECORD, TRIPLE, GarmentButton, PressQueue


@pytest.fixture
def button():
    factory = MockFactory()
    events = PressQueue()
    b = GarmentButton(17, events, pin_factory=factory, bounce_s=None)
    yield b, factory.pin(17), events
    b.close()
    factory.close()


def late(pin, edges: list[tuple[float, bool]], delay: float) -> None:
    """Deliver pin edges the way a busy CPU does: each edge keeps the time it happened (as the kernel stamps it),
    but its callback runs delay seconds after the one before."""
    for ticks, state in edges:
        time.sleep(delay)
        pin._state = state
        PiPin._call_when_changed(pin, ticks, state)


def taps(start: float, n: int, gap: float = 0.3, down: float = 0.1) -> list[tuple[float, bool]]:
    """n quick presses (pulled-up pin: pressed is low), starting at start."""
    edges = []
    for i in range(n):
        edges += [(start + i * gap, False), (start + i * gap + down, True)]
    return edges


def drain(events: PressQueue) -> list[str]:
    out = []
    while (e := events.get(timeout=0.05)) is not None:
        out.append(e)
    return out


def test_three_quick_presses_are_a_triple_even_when_their_callbacks_run_late(button):
    """Pressed 0.3 s apart, but each callback ran 0.8 s after the one before: still the help, not three presses."""
    b, pin, events = button
    seen = []
    events.put = lambda e: seen.append(e) or True
    late(pin, taps(time.monotonic(), 3), delay=0.4)
    assert seen == [PRESS, DOUBLE, TRIPLE]


def test_presses_far_apart_stay_single_presses_however_fast_their_callbacks_run(button):
    b, pin, events = button
    seen = []
    events.put = lambda e: seen.append(e) or True
    late(pin, taps(time.monotonic() - 3, 3, gap=1.0), delay=0.0)
    assert seen == [PRESS, PRESS, PRESS]


def test_a_long_hold_is_measured_from_the_edges(button):
    """Held 3.2 s by the pin's clock: a voice label, even though the release callback came quickly."""
    b, pin, events = button
    start = time.monotonic() - 4
    b._on_hold()  # gpiozero's hold thread fires when_held after hold_s
    late(pin, [(start, False)], delay=0)
    b._held = True
    late(pin, [(start + 3.2, True)], delay=0)
    assert drain(events) == [RECORD]
    late(pin, [(start + 3.5, False)], delay=0)
    b._held = True
    late(pin, [(start + 4.0, True)], delay=0)
    assert drain(events) == [HOLD]


def test_a_later_gesture_of_the_sequence_replaces_the_waiting_one():
    """Busy describing the first press: the double waits, the triple replaces it (it used to be dropped)."""
    q = PressQueue()
    assert q.put(DOUBLE) and q.put(TRIPLE)
    assert not q.put(DOUBLE) and not q.put(PRESS) and not q.put(HOLD)
    assert q.dropped == 3 and drain(q) == [TRIPLE]
    assert q.put(HOLD) and not q.put(TRIPLE)  # another gesture entirely: the first one stays
    assert drain(q) == [HOLD]


def test_a_busy_main_loop_keeps_the_last_gesture_of_the_sequence():
    q = PressQueue()
    q.put(PRESS)
    q.clear()  # a press made while busy: dropped
    assert drain(q) == []
    q.put(TRIPLE)
    q.clear()  # a triple's first press was the busy one: it stays
    assert drain(q) == [TRIPLE]


def test_get_waits_for_a_put_from_another_thread():
    q = PressQueue()
    threading.Timer(0.1, q.put, (PRESS,)).start()
    assert q.get(timeout=5) == PRESS
    assert q.get(timeout=0.01) is None
