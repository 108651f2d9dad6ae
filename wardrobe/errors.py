"""One error root for everything wardrobe raises on purpose."""


class WardrobeError(Exception):
    """Base class: a failure wardrobe expects and can explain in plain words."""


class ConfigError(WardrobeError, ValueError):
    """The configuration file or a flag is invalid."""


class ImageError(WardrobeError, ValueError):
    """A photo could not be read or decoded."""


class CameraError(WardrobeError, OSError):
    """The camera is missing, busy or returned no frame."""


class ModelError(WardrobeError, RuntimeError):
    """A model bundle is missing, tampered with or incompatible."""


class SpeechError(WardrobeError, RuntimeError):
    """No voice could be loaded or synthesis failed."""


class AudioError(WardrobeError, OSError):
    """The audio output is missing or refused to play."""


class RemoteError(WardrobeError, RuntimeError):
    """A step on a closet reached over SSH failed."""


class TrainingError(WardrobeError, ValueError):
    """Training data, weights or arguments are unusable (the companion training script)."""


class SigningKeyError(WardrobeError, ValueError):
    """A signing key file that cannot be used (missing, unreadable, wrong kind)."""
