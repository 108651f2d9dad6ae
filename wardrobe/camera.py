"""Cameras behind one small protocol: the Pi camera, a USB camera, and a folder that replays photos."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from wardrobe.errors import CameraError
from wardrobe.settings import CAMERA_KINDS as CAMERAS

log = logging.getLogger(__name__)


PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class Camera(Protocol):
    """Takes one RGB uint8 photo per call; raises CameraError when it cannot."""

    def capture(self) -> np.ndarray:
        """A photo, shape (H, W, 3), RGB."""

    def close(self) -> None:
        """Release the device."""


class PiCamera:
    """Picamera2 still capture at a configured size, after letting exposure settle."""

    def __init__(self, size: tuple[int, int] = (1640, 1232), settle_s: float = 1.0) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as e:
            raise CameraError("picamera2 is not installed (apt install python3-picamera2 on Raspberry Pi OS)") from e
        try:
            self.cam = Picamera2()
            self.cam.configure(self.cam.create_still_configuration(main={"size": size, "format": "RGB888"}))
            self.cam.start()
        except Exception as e:  # libcamera reports a missing camera in many ways
            raise CameraError(f"the Pi camera cannot be opened: {e}") from e
        time.sleep(settle_s)  # auto exposure and white balance settle

    def capture(self) -> np.ndarray:
        """A still; Picamera2's "RGB888" is BGR in memory order, so it is flipped."""
        try:
            return np.ascontiguousarray(self.cam.capture_array("main")[..., ::-1])
        except Exception as e:
            raise CameraError(f"the Pi camera gave no picture: {e}") from e

    def close(self) -> None:
        """Stop the camera."""
        try:
            self.cam.stop()
            self.cam.close()
        except Exception:  # closing a camera that vanished must not raise
            pass


class UsbCamera:
    """An OpenCV VideoCapture device; a few frames are dropped so exposure has settled."""

    def __init__(self, index: int | str = 0, size: tuple[int, int] = (1280, 720), warmup_frames: int = 5) -> None:
        import cv2

        self.cv2 = cv2
        self.cap = cv2.VideoCapture(index)
        if not self.cap.isOpened():
            raise CameraError(f"no USB camera at {index!r}")
        self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        self.warmup_frames = warmup_frames

    def capture(self) -> np.ndarray:
        """The freshest frame."""
        frame = None
        for _ in range(self.warmup_frames):
            ok, frame = self.cap.read()
            if not ok:
                raise CameraError("the USB camera stopped giving frames (unplugged?)")
        return self.cv2.cvtColor(frame, self.cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        """Release the device."""
        self.cap.release()


class FolderCamera:
    """Replays the photos of a folder in name order, one per capture, round and round."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.index = 0
        self.photos()  # fail at start if there is nothing to show

    def photos(self) -> list[Path]:
        """The photos now in the folder."""
        if not self.folder.is_dir():
            raise CameraError(f"camera folder {self.folder} is " + ("a file, not a folder" if self.folder.exists()
                                                                  else "missing"))
        found = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        if not found:
            raise CameraError(f"camera folder {self.folder} holds no photos")
        return found

    def capture(self) -> np.ndarray:
        """The next photo (ImageError if that photo is broken; CameraError if the folder is gone)."""
        from wardrobe.errors import ImageError
        from wardrobe.images import read_image

        photos = self.photos()
        path = photos[self.index % len(photos)]
        self.index += 1
        try:
            return read_image(path, max_side=4096)
        except ImageError as e:  # a bad frame, not a lost camera
            raise ImageError(f"the camera gave a broken picture: {e}") from e

    def close(self) -> None:
        """Nothing to release."""


def open_camera(kind: str, source: str | None = None, size: tuple[int, int] | None = None) -> Camera:
    """Open the configured camera; CameraError with a plain reason if it is not there."""
    if kind == "picamera":
        return PiCamera(size or (1640, 1232))
    if kind == "usb":
        return UsbCamera(int(source) if source and source.isdigit() else (source or 0), size or (1280, 720))
    if kind == "folder":
        if not source:
            raise CameraError("the folder camera needs camera.source = a folder of photos")
        return FolderCamera(Path(source))
    raise CameraError(f"unknown camera {kind!r}; choose from {', '.join(CAMERAS)}")
