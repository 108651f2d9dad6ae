"""Companion training script: `python -m wardrobe.train [classifier] ...` or `wardrobe train ...`."""

from __future__ import annotations

import logging
import sys

PRESET_COMMANDS = ("classifier", "colours", "export", "segmentation")


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a training preset; the classifier is the default."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = argv.pop(0) if argv and argv[0] in PRESET_COMMANDS else "classifier"
    if command == "classifier":
        from wardrobe.train import classifier

        classifier.main(classifier.get_args_parser().parse_args(argv))
    elif command == "export":
        from wardrobe.train import export

        export.main(export.get_args_parser().parse_args(argv))
    elif command == "segmentation":
        from wardrobe.train import segmentation

        segmentation.main(segmentation.get_args_parser().parse_args(argv))
    elif command == "colours":
        from wardrobe.train import colours

        colours.main(colours.get_args_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
