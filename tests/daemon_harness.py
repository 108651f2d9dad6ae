"""Runs the real daemon in this process with gpiozero's MockFactory and drives its button from stdin.

Commands, one per line: press, tap (no pause after the last press), double, triple, hold, record (3.5 s),
fault (the next description raises), slow (the next
description takes 3 s more), quit.
Usage: python -m tests.daemon_harness [--fsize-limit BYTES] -- WARDROBE RUN FLAGS...
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import threading
import time

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")


def main() -> None:
    from gpiozero.pins.mock import MockFactory

    from wardrobe.cli import build_parser, overrides, setup_logging
    from wardrobe.daemon import Daemon

    argv = sys.argv[1:]
    if argv[:1] == ["--fsize-limit"]:
        # Writes past this size fail as on a full disk (EFBIG); the signal would kill us instead.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limit = int(argv[1])
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        argv = argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    args = build_parser().parse_args(["run", *argv])
    setup_logging(True)
    factory = MockFactory()
    daemon = Daemon(args.config, overrides(args), pin_factory=factory)
    daemon.start()
    pin = factory.pin(daemon.settings.button.pin)

    from wardrobe.button import DOUBLE_S

    last_release = [0.0]

    def press() -> None:
        pin.drive_low()
        time.sleep(0.15)
        pin.drive_high()
        last_release[0] = time.monotonic()

    def commands() -> None:
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "press":  # a press of its own: after the double-press window of the one before
                time.sleep(max(0.0, last_release[0] + DOUBLE_S + 0.05 - time.monotonic()))
                press()
            elif cmd == "tap":  # a press right away (several quick taps make double presses)
                press()
            elif cmd == "triple":  # three quick presses: the spoken help
                for _ in range(3):
                    press()
                    time.sleep(0.15)
            elif cmd == "record":  # a long hold: record a voice label
                time.sleep(max(0.0, last_release[0] + DOUBLE_S + 0.05 - time.monotonic()))
                pin.drive_low()
                time.sleep(3.5)
                pin.drive_high()
            elif cmd == "double":  # two quick presses: "do these match?"
                for _ in range(2):
                    pin.drive_low()
                    time.sleep(0.1)
                    pin.drive_high()
                    time.sleep(0.15)
            elif cmd == "hold":
                pin.drive_low()
                time.sleep(daemon.settings.button.hold_s + 0.5)
                pin.drive_high()
            elif cmd == "fault":
                real = daemon.pipeline.describe

                def broken(*a, real=real, **k):
                    daemon.pipeline.describe = real
                    raise RuntimeError("injected fault")

                daemon.pipeline.describe = broken
            elif cmd == "slow":
                real_describe = daemon.pipeline.describe

                def slow(*a, real=real_describe, **k):
                    daemon.pipeline.describe = real
                    time.sleep(3)
                    return real(*a, **k)

                daemon.pipeline.describe = slow
            elif cmd == "quit":
                daemon.stopping.set()
            print(f"harness: {cmd} done", file=sys.stderr, flush=True)

    threading.Thread(target=commands, daemon=True).start()
    daemon.run()


if __name__ == "__main__":
    main()
