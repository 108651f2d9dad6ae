"""`wardrobe bench`: median per-stage times of the describe path, and the original method as a ratio."""

from __future__ import annotations

import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SIZES = {"640x480": (640, 480), "pi-still-3280x2464": (3280, 2464)}
"""Photo sizes measured: VGA, and the Pi Camera Module 2's full still."""
ASSETS = Path(__file__).resolve().parent.parent / "assets" / "photos"


def median_ms(fn, repeat: int) -> float:
    """Median wall time of fn() in milliseconds over repeat runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def original_describe(rgb: np.ndarray) -> list:
    """The original method end to end on colours: threshold mask, KMeans on all pixels in RGB, KD-tree per call."""
    from wardrobe.colours import original_colours
    from wardrobe.segment import threshold_mask

    return original_colours(rgb, (threshold_mask(rgb) > 0).astype(np.uint8))


def run_bench(args, settings) -> int:
    """Print a table of median milliseconds per stage and size, with ratios to the original method."""
    import cv2

    from wardrobe.cli import build_pipeline
    from wardrobe.colours import dominant_colours, garment_weights
    from wardrobe.pipeline import read_image, region_of, shrink, WORK_SIDE
    from wardrobe.segment import segment
    from wardrobe.speech import Speaker, load_voice
    from wardrobe.audio import NullPlayer

    photos = args.photos or sorted(p for p in ASSETS.glob("*.jpg"))
    if not photos:
        raise SystemExit("no photos to measure: pass some, or keep assets/photos/*.jpg")
    t = time.perf_counter()
    pipeline = build_pipeline(settings)
    load_pipeline_ms = (time.perf_counter() - t) * 1000
    results: dict = {"photos": [str(p) for p in photos], "repeat": args.repeat, "load_pipeline_ms": load_pipeline_ms,
                     "runtime": pipeline.classifier.runtime if pipeline.classifier else None, "sizes": {}}
    for size_name, (w, h) in SIZES.items():
        rows: dict[str, list[float]] = {k: [] for k in ("decode", "resize", "segment", "colour", "classify",
                                                        "phrase", "segment+colour", "original segment+colour")}
        for photo in photos:
            rgb = cv2.resize(read_image(photo, 10_000), (w, h), interpolation=cv2.INTER_CUBIC)
            ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            rows["decode"].append(median_ms(lambda: cv2.imdecode(jpg, cv2.IMREAD_COLOR), args.repeat))
            rows["resize"].append(median_ms(lambda: shrink(rgb, WORK_SIDE), args.repeat))
            small = shrink(rgb, WORK_SIDE)
            alpha = segment(small, pipeline.method, pipeline.plate)
            garment = None
            if pipeline.classifier is not None:
                garment = pipeline.classifier.predict(small).garment
                rows["classify"].append(median_ms(lambda: pipeline.classifier.predict(small), args.repeat))
            rows["segment"].append(median_ms(lambda: segment(small, pipeline.method, pipeline.plate), args.repeat))

            def colour():
                cl = dominant_colours(small, garment_weights(small, alpha, region=region_of(garment)), k=pipeline.k)
                return [pipeline.namer.name(c) for c in cl]

            rows["colour"].append(median_ms(colour, args.repeat))

            def ours():
                a = segment(small, pipeline.method, pipeline.plate)
                cl = dominant_colours(small, garment_weights(small, a, region=region_of(garment)), k=pipeline.k)
                return [pipeline.namer.name(c) for c in cl]

            rows["segment+colour"].append(median_ms(ours, args.repeat))
            rows["original segment+colour"].append(median_ms(lambda: original_describe(rgb), max(1, args.repeat // 2)))
            d = pipeline.describe(rgb)
            from wardrobe import phrase

            rows["phrase"].append(median_ms(lambda: phrase.sentence(d.alternatives, d.colours, d.problems), args.repeat))
        med = {k: statistics.median(v) for k, v in rows.items() if v}
        med["speedup vs original"] = med["original segment+colour"] / med["segment+colour"]
        results["sizes"][size_name] = med
    voice = load_voice(settings.speech.engine, settings.speech.model, settings.speech.fallback)
    speaker = Speaker(voice, NullPlayer())
    sentences = [pipeline.describe(read_image(p)).clauses for p in photos]
    cold = []
    for clauses in sentences:
        speaker._cache.clear()
        t = time.perf_counter()
        speaker.audio(clauses[0])
        cold.append((time.perf_counter() - t) * 1000)
    warm = [median_ms(lambda c=c: speaker.audio(c[0]), args.repeat) for c in sentences]
    whole = []
    for clauses in sentences:
        speaker._cache.clear()
        t = time.perf_counter()
        speaker.audio(" ".join(clauses))
        whole.append((time.perf_counter() - t) * 1000)
    results["speech"] = {"voice": voice.name, "first audio, first clause uncached": statistics.median(cold),
                         "first audio, cached phrase": statistics.median(warm),
                         "whole sentence uncached": statistics.median(whole),
                         "ratio whole/first clause": statistics.median(whole) / statistics.median(cold)}
    print_table(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0


def print_table(results: dict) -> None:
    """Human-readable medians."""
    print(f"photos: {len(results['photos'])}, runs each: {results['repeat']}, classifier runtime: {results['runtime']}")
    print(f"pipeline load (classifier, colour namer): {results['load_pipeline_ms']:.0f} ms")
    for size, med in results["sizes"].items():
        print(f"\n{size} (median ms)")
        for k, v in med.items():
            print(f"  {k:28s} {v:9.2f}" + ("x" if k.startswith("speedup") else ""))
    print("\nspeech (median ms)")
    for k, v in results["speech"].items():
        print(f"  {k:36s} {v if isinstance(v, str) else f'{v:9.2f}'}")
