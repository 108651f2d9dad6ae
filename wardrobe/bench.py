"""`wardrobe bench`: median per-stage times of the describe path, and the original method as a ratio."""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from pathlib import Path

import numpy as np

from wardrobe.errors import WardrobeError

log = logging.getLogger(__name__)

SIZES = {"640x480": (640, 480), "pi-still-3280x2464": (3280, 2464)}
"""Photo sizes measured: VGA, and the Pi Camera Module 2's full still."""


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
    from wardrobe.baseline import original_colours
    from wardrobe.segment import threshold_mask

    return original_colours(rgb, (threshold_mask(rgb) > 0).astype(np.uint8))


BENCH_CLOSET = 200
"""Enrolled garments matched against in the bench."""


def bench_closet(folder: str, width: int):
    """A closet of BENCH_CLOSET random garments of the model's embedding width in folder, made once per bench run,
    each as the closet keeps it (a real thumbnail: a garment the closet cannot trust is skipped, and matching
    against none measures nothing)."""
    from pathlib import Path

    from wardrobe.closet import Closet, thumbnail

    rng = np.random.default_rng(0)
    closet = Closet(Path(folder) / "closet.db")
    colours = [{"lab": [30.0, 5.0, -25.0], "share": 1.0, "name": "navy blue"}]
    thumb = thumbnail(np.full((64, 48, 3), (20, 30, 90), np.uint8))
    for i in range(BENCH_CLOSET):
        closet.enrol(rng.normal(size=width).astype(np.float32), colours, thumb, "bench", name=f"g{i}")
    kept = len(closet.garments())
    if kept != BENCH_CLOSET:
        closet.close()
        raise WardrobeError(f"the bench's closet kept {kept} of its {BENCH_CLOSET} garments: matching not measured")
    return closet


def measure_photo(pipeline, rgb: np.ndarray, repeat: int, closet=None) -> dict[str, float]:
    """Median milliseconds of each describe stage on one photo, and of the original method."""
    import cv2

    from wardrobe import phrase
    from wardrobe.images import shrink
    from wardrobe.pipeline import WORK_SIDE
    from wardrobe.segment import segment

    out: dict[str, float] = {}
    _, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out["decode"] = median_ms(lambda: cv2.imdecode(jpg, cv2.IMREAD_COLOR), repeat)
    out["resize"] = median_ms(lambda: shrink(rgb, WORK_SIDE), repeat)
    small = shrink(rgb, WORK_SIDE)
    garment = None
    if pipeline.model_version is not None:
        garment = pipeline.classify(small).garment
        out["classify"] = median_ms(lambda: pipeline.classify(small), repeat)
    alpha = segment(small, pipeline.method, pipeline.plate)
    out["segment"] = median_ms(lambda: segment(small, pipeline.method, pipeline.plate), repeat)
    out["colour"] = median_ms(lambda: pipeline.colours(small, alpha, garment), repeat)
    out["segment+colour"] = median_ms(
        lambda: pipeline.colours(small, segment(small, pipeline.method, pipeline.plate), garment), repeat)
    out["original segment+colour"] = median_ms(lambda: original_describe(rgb), max(1, repeat // 2))
    d = pipeline.describe(rgb)
    out["phrase"] = median_ms(lambda: phrase.sentence(d.alternatives, d.colours, d.problems), repeat)
    out.update(measure_additions(small, alpha, d, repeat, closet))
    bundle = pipeline.classifier.bundle if pipeline.classifier is not None else None
    if bundle is not None and (bundle.patterns or bundle.cutout_weight):
        # The cut-out garment (the pattern's view, and the garment's second) goes through the network in the
        # same run as the photo: its cost is the difference between that run and the photo's alone.
        both = median_ms(lambda: pipeline.classify_with_cutout(small, alpha), repeat)
        key = "cut-out view (same run)"
        out[key] = max(0.0, both - median_ms(lambda: pipeline.classify(small), repeat))
        out["additions total"] = out.pop("additions total") + out[key]
    if bundle is not None and bundle.colour_decision is not None and d.colours and d.colour_families:
        out["learned colour decision"] = learned_decision(bundle, small, alpha, d, repeat)
        out["additions total"] = out.pop("additions total") + out["learned colour decision"]
    out["describe total"] = median_ms(lambda: pipeline.describe(rgb), repeat)
    return out


def learned_decision(bundle, small: np.ndarray, alpha: np.ndarray, d, repeat: int) -> float:
    """Median ms the bundle's learned colour decision adds to a press: its inputs from the colour step's own
    photo, mask and pixel weights (computed there anyway), and its families."""
    import cv2

    from wardrobe.colour_inputs import features
    from wardrobe.colours import garment_weights
    from wardrobe.images import shrink
    from wardrobe.pipeline import COLOUR_SIDE

    tiny = shrink(small, COLOUR_SIDE)
    tiny_alpha = cv2.resize(alpha, (tiny.shape[1], tiny.shape[0]), interpolation=cv2.INTER_AREA)
    weights = garment_weights(tiny, tiny_alpha)
    return median_ms(lambda: bundle.colour_decision.probabilities(
        features(tiny, tiny_alpha, weights, d.colours, d.colour_families)), repeat)


def measure_additions(small: np.ndarray, alpha: np.ndarray, d, repeat: int, closet=None) -> dict[str, float]:
    """The "see better" and "know my clothes" stages: white balance (card; the photo's own estimate, applied,
    which is off by default and not in the total), aiming help, the garment's lightness against the photo around
    it (a white garment photographed grey), and matching against the bench closet."""
    import cv2

    from wardrobe import quality
    from wardrobe.images import shrink
    from wardrobe.pipeline import COLOUR_SIDE, lightness_inside_and_around
    from wardrobe.whitebalance import ESTIMATOR, ESTIMATORS, WhiteBalance, WhiteCard, apply_gains

    out: dict[str, float] = {}
    card = WhiteBalance("card", WhiteCard((0.02, 0.02, 0.1, 0.1)))
    out["white balance: card"] = median_ms(lambda: card.correct(small), repeat)
    out["white balance: estimate"] = median_ms(lambda: apply_gains(small, ESTIMATORS[ESTIMATOR](small)), repeat)
    out["aiming"] = median_ms(lambda: quality.aiming(alpha, small), repeat)
    tiny = shrink(small, COLOUR_SIDE)
    tiny_alpha = cv2.resize(alpha, (tiny.shape[1], tiny.shape[0]), interpolation=cv2.INTER_AREA)
    out["exposure: garment vs around"] = median_ms(lambda: lightness_inside_and_around(tiny, tiny_alpha), repeat)
    if closet is not None and d.embedding is not None and d.colours:
        out["closet match (200 garments)"] = median_ms(lambda: closet.match(d.embedding, d.colours), repeat)
    out["additions total"] = (out["white balance: card"] + out["aiming"] + out["exposure: garment vs around"]
                              + out.get("closet match (200 garments)", 0.0))
    return out


def check_out(path: Path | None) -> None:
    """Before a benchmark runs for minutes: its --out file can be written (WardrobeError in one line if not)."""
    from wardrobe.files import check_writable_file

    if path is not None:
        try:
            check_writable_file(path, "--out")
        except ValueError as e:
            raise WardrobeError(f"cannot write the results: {e}") from None


def write_results(path: Path, results: dict) -> None:
    """The results as JSON, written whole or not at all."""
    from wardrobe.files import write_atomic

    try:
        write_atomic(path, json.dumps(results, indent=2).encode(), sync=False)
    except OSError as e:
        raise WardrobeError(f"cannot write the results to {path}: {e.strerror or e}") from None


def run_bench(args, settings) -> int:
    """Print a table of median milliseconds per stage and size, with ratios to the original method."""
    import cv2

    from wardrobe import wiring
    from wardrobe.audio import NullPlayer
    from wardrobe.images import read_image, sample_photos
    from wardrobe.speech import Speaker

    photos = args.photos or sample_photos()
    if not photos:
        raise WardrobeError("no photos to measure: pass some")
    t = time.perf_counter()
    pipeline = wiring.build_pipeline(settings)
    load_pipeline_ms = (time.perf_counter() - t) * 1000
    results: dict = {"photos": [str(p) for p in photos], "repeat": args.repeat, "load_pipeline_ms": load_pipeline_ms,
                     "runtime": pipeline.runtime, "sizes": {}}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        embedding = pipeline.describe(read_image(photos[0], 10_000)).embedding
        closet = bench_closet(tmp, len(embedding)) if embedding is not None else None
        for size_name, (w, h) in SIZES.items():
            rows: dict[str, list[float]] = {}
            for photo in photos:
                rgb = cv2.resize(read_image(photo, 10_000), (w, h), interpolation=cv2.INTER_CUBIC)
                for stage, ms in measure_photo(pipeline, rgb, args.repeat, closet).items():
                    rows.setdefault(stage, []).append(ms)
            results["sizes"][size_name] = {k: statistics.median(v) for k, v in rows.items()}
        if closet is not None:
            closet.close()
    for med in results["sizes"].values():
        med["speedup vs original"] = med["original segment+colour"] / med["segment+colour"]
    voice = wiring.load_voice(settings)
    speaker = Speaker(voice, NullPlayer())
    sentences = [pipeline.describe(read_image(p)).clauses for p in photos]
    cold = []
    for clauses in sentences:
        speaker.clear_cache()
        t = time.perf_counter()
        speaker.audio(clauses[0])
        cold.append((time.perf_counter() - t) * 1000)
    warm = [median_ms(lambda c=c: speaker.audio(c[0]), args.repeat) for c in sentences]
    whole = []
    for clauses in sentences:
        speaker.clear_cache()
        t = time.perf_counter()
        speaker.audio(" ".join(clauses))
        whole.append((time.perf_counter() - t) * 1000)
    results["speech"] = {"voice": voice.name, "first audio, first clause uncached": statistics.median(cold),
                         "first audio, cached phrase": statistics.median(warm),
                         "whole sentence uncached": statistics.median(whole),
                         "ratio whole/first clause": statistics.median(whole) / statistics.median(cold)}
    print_table(results)
    if args.out:
        write_results(args.out, results)
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


def rss_of(pid: int) -> float:
    """Resident memory of a process, MB (Linux)."""
    import re

    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1)) / 1024


def run_web_bench(args) -> int:
    """Idle memory of the caretaker's page (the real server, a fresh state folder), before and after it has
    served its pages; the medians of three readings each."""
    import socket
    import subprocess
    import sys
    import tempfile
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as state:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        base = [sys.executable, "-m", "wardrobe", "web"]
        subprocess.run([*base, "password", "--state-dir", state], input="bench-password\n", text=True, env=env,
                       capture_output=True, check=True)
        proc = subprocess.Popen([*base, "--address", f"127.0.0.1:{port}", "--state-dir", state], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{url}/healthz", timeout=2).read()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise WardrobeError("the page did not start: run `wardrobe web` to see why") from None
                    time.sleep(0.2)
            time.sleep(1)
            idle = statistics.median(rss_of(proc.pid) for _ in range(3) if time.sleep(0.3) is None)
            for _ in range(max(20, args.repeat * 10)):
                for path in ("/healthz", "/login"):
                    urllib.request.urlopen(url + path, timeout=10).read()
            time.sleep(1)
            served = statistics.median(rss_of(proc.pid) for _ in range(3) if time.sleep(0.3) is None)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    result = {"idle_rss_mb": idle, "rss_after_serving_mb": served}
    print("the caretaker's page (wardrobe web), resident memory (medians of 3)")
    for k, v in result.items():
        print(f"  {k:30s} {v:9.1f}")
    if args.out:
        write_results(args.out, result)
    return 0


def run_daemon_bench(args) -> int:
    """Cold start, idle memory and press-to-first-audio of the real daemon (folder camera, no speaker)."""
    import signal
    import subprocess
    import sys
    import tempfile

    from wardrobe.images import sample_photos

    presses = max(3, args.repeat * 2)
    folder = sample_photos()[0].parent
    with tempfile.TemporaryDirectory() as state:
        env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "wardrobe", "run", "--camera", "folder", "--camera-source", str(folder),
               "--output", "none", "--state-dir", state]
        if args.model:
            cmd += ["--model", str(args.model)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        try:
            for line in proc.stderr:
                if "ready in" in line:
                    break
            else:
                raise WardrobeError("the daemon did not start: run `wardrobe run` with the same flags to see why")
            cold_s = time.perf_counter() - t0
            time.sleep(2)
            rss_mb = rss_of(proc.pid)
            timings: dict[str, list[float]] = {}
            for _ in range(presses):
                time.sleep(1.0)  # a press while the last one finishes is dropped by design
                proc.send_signal(signal.SIGUSR1)
                for line in proc.stderr:
                    if "described:" in line:
                        for k, v in json.loads(line.split("timings_ms=", 1)[1]).items():
                            timings.setdefault(k, []).append(v)
                        break
            time.sleep(2)
            after_mb = rss_of(proc.pid)  # idle again: the presses must not leave the daemon bigger and bigger
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    result = {"presses": presses, "cold_start_s": cold_s, "idle_rss_mb": rss_mb, "idle_rss_after_presses_mb": after_mb,
              **{f"{k}_ms": statistics.median(v) for k, v in timings.items()}}
    print(f"daemon, {presses} presses on {len(list(folder.glob('*.jpg')))} sample photos (medians)")
    for k, v in result.items():
        print(f"  {k:30s} {v:9.2f}" if isinstance(v, float) else f"  {k:30s} {v}")
    if args.out:
        write_results(args.out, result)
    return 0
