"""The capture light: an optional LED switched on for the photo only, so colours are seen under a fixed light."""

from __future__ import annotations

import time

import numpy as np


class CaptureLight:
    """A gpiozero PWMLED on a BCM pin: on (at a set brightness) while the camera takes the photo, off after."""

    def __init__(self, pin: int, brightness: float = 1.0, settle_s: float = 0.15, pin_factory=None) -> None:
        from gpiozero import PWMLED

        from wardrobe.button import gpio_device

        self.led = gpio_device(lambda: PWMLED(pin, pin_factory=pin_factory))
        self.pin, self.brightness, self.settle_s = pin, brightness, settle_s

    def capture(self, camera) -> np.ndarray:
        """Light on, let the camera's exposure settle, take the photo, light off (also when the capture fails)."""
        self.led.value = self.brightness
        try:
            time.sleep(self.settle_s)
            return camera.capture()
        finally:
            self.led.off()

    def close(self) -> None:
        """Switch off and release the pin."""
        self.led.close()


class NoLight:
    """No capture light configured: the photo is taken under the room's light."""

    pin = None

    def capture(self, camera) -> np.ndarray:
        """Take the photo."""
        return camera.capture()

    def close(self) -> None:
        """Nothing to release."""
