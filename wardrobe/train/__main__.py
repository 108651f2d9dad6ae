"""Companion training script: `python -m wardrobe.train [classifier] ...` or `wardrobe train ...`."""

from __future__ import annotations

import importlib
import logging
import sys

PRESET_COMMANDS = {
    # command: module in wardrobe.train with get_args_parser() and main(args)
    "classifier": "classifier",
    "colours": "colours",
    "export": "export",
    "segmentation": "segmentation",
    "fashion-mnist": "fashion_mnist",
    "attributes": "attributes",
    "vae-oversample": "vae_oversample",
    "vae-home": "vae_home",
    "experts": "experts",
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a training preset; the classifier is the default."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = argv.pop(0) if argv and argv[0] in PRESET_COMMANDS else "classifier"
    module = importlib.import_module(f"wardrobe.train.{PRESET_COMMANDS[command]}")
    module.main(module.get_args_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
