"""Companion training script: `python -m wardrobe.train [classifier] ...` or `wardrobe train ...`."""

from __future__ import annotations

import importlib
import logging
import os
import sys

from wardrobe.errors import WardrobeError
from wardrobe.files import check_writable_file

PRESET_COMMANDS = {
    # command: module in wardrobe.train with get_args_parser() and main(args)
    "classifier": "classifier",
    "colours": "colours",
    "colour-decision": "colour_decision",
    "export": "export",
    "rebuild": "rebuild",
    "evaluate": "evaluate",
    "compare": "compare",
    "see-better": "seebetter",
    "patterns": "patterns",
    "closet": "closet_eval",
    "match": "match_eval",
    "household": "household",
    "segmentation": "segmentation",
    "fashion-mnist": "published.fashion_mnist",
    "attributes": "published.attributes",
    "vae-oversample": "published.vae_oversample",
    "vae-home": "published.vae_home",
    "experts": "published.experts",
}

REPORTS = {"evaluate", "see-better", "closet", "match", "household", "segmentation", "colours"}
"""Commands whose --output is a report file written at the end (checked before the work)."""

TRAIN_INSTALL = ("pip install torch==2.14.1 torchvision==0.29.1 -e '.[train]' (on aarch64: torch==2.9.1 "
                 "torchvision==0.24.1)")
"""How the train extra is installed: from the source folder (wardrobe is not on the package registry)."""
USAGE = f"""usage: wardrobe train COMMAND [--help] ...

The companion training script. Commands (each has its own --help once the train extra is installed):
  classifier      train a garment classifier (the default command)
  export          write a model bundle from a training run
  rebuild         choose the shipped ONNX precision again from a bundle's own fp32 weights
  evaluate        score a bundle through the same describe path a user hears
  compare         is one bundle really better? two evaluate --rows files, photo by photo, with 95 % intervals
  colours         fit and score the colour-family model
  colour-decision fit the bundle's learned colour decision on photos labelled by eye and by the shop
  patterns        add a pattern head to a bundle
  see-better      white balance, capture light, aiming and the closet setting
  closet          how well enrolled garments are recognised
  match           "do these match?" on held-out sock pairs
  household       a household's corrections on the page, kept as examples: accuracy before and after
  segmentation    background removal methods
  fashion-mnist, attributes, vae-oversample, vae-home, experts: the published-method studies

Install the train extra in the wardrobe source folder: {TRAIN_INSTALL}"""

DATA_PARALLEL = {"classifier", "fashion-mnist", "attributes"}
"""Presets that train one network and so run data-parallel under torchrun. The others either train
no network (colours, segmentation, export), spread their own networks over processes (experts), or
are studies of small networks on frozen features (vae-oversample, vae-home): under torchrun every
rank would redo the whole job and write the same files, so they refuse instead."""


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a training preset; the classifier is the default."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)  # needs no torch: the list of commands, each one's own --help needs the train extra
        return 0
    if not argv[0].startswith("-") and argv[0] not in PRESET_COMMANDS:  # `wardrobe train exprot ...`
        raise SystemExit(f"wardrobe train: no command {argv[0]!r} (commands: {', '.join(PRESET_COMMANDS)}; "
                         f"without one, the classifier is trained)")
    command = argv.pop(0) if argv[0] in PRESET_COMMANDS else "classifier"
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and command not in DATA_PARALLEL:
        hint = " (it spreads its networks over processes itself: --workers)" if command == "experts" else ""
        raise SystemExit(f"`{command}` does not run under torchrun{hint}; run it as one process. "
                         f"Data-parallel presets: {', '.join(sorted(DATA_PARALLEL))}")
    try:
        module = importlib.import_module(f"wardrobe.train.{PRESET_COMMANDS[command]}")
    except ImportError as e:
        raise SystemExit(f"wardrobe train {command} needs the train extra ({e.name} is missing): in the wardrobe "
                         f"source folder, {TRAIN_INSTALL}") from None
    args = module.get_args_parser().parse_args(argv)
    report = getattr(args, "output", None)
    if command in REPORTS and report is not None:  # before hours of work, not after
        try:
            check_writable_file(report, "--output")
        except ValueError as e:
            raise SystemExit(f"wardrobe train {command}: {e}") from None
    run = getattr(args, "output_dir", None)
    made = run is not None and not os.path.lexists(run)
    try:
        module.main(args)
    except (WardrobeError, OSError) as e:  # OSError: a file or folder given that is missing, read-only or a file
        if made and os.path.isdir(run) and not os.listdir(run):
            os.rmdir(run)  # a refused run leaves no empty run folder behind
        if isinstance(e, WardrobeError):
            raise SystemExit(f"wardrobe train {command}: {e}") from None
        where = f"{e.filename}: " if e.filename else ""
        raise SystemExit(f"wardrobe train {command}: {where}{e.strerror or e}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
