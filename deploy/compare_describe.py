"""Compare `wardrobe describe --json` output of two machines photo by photo (check-arm64.sh uses it).

Reports, photo by photo: garment, garment confidence (tolerance 0.02), colour families in order, sentence.
Exits 1 only if a garment or a main colour's family differs: the other differences (a confidence, a
second or third colour, and so a sentence) come from OpenCV rounding a resized pixel differently on
each CPU (same_model_check.py shows it), as a camera's own noise changes them from press to press.
    python3 deploy/compare_describe.py REFERENCE.jsonl OTHER.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TOLERANCE = 0.02


def read(path: str) -> dict[str, dict]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return {Path(r["image"]).name: r for r in rows}


def differences(a: dict, b: dict) -> list[str]:
    out = []
    if a["garment"] != b["garment"]:
        out.append(f"garment {a['garment']} vs {b['garment']}")
    ca, cb = a.get("garment_confidence") or 0.0, b.get("garment_confidence") or 0.0
    if abs(ca - cb) > TOLERANCE:
        out.append(f"confidence {ca:.3f} vs {cb:.3f}")
    fa, fb = [c["family"] for c in a["colours"]], [c["family"] for c in b["colours"]]
    if fa != fb:
        out.append(f"colour families {fa} vs {fb}")
    if a["sentence"] != b["sentence"]:
        out.append(f"sentence {a['sentence']!r} vs {b['sentence']!r}")
    return out


def main(reference: str, other: str) -> int:
    ref, oth = read(reference), read(other)
    if set(ref) != set(oth):
        print(f"different photos: {sorted(set(ref) ^ set(oth))}")
        return 1
    differing, serious, worst = 0, 0, 0.0
    for name in sorted(ref):
        a, b = ref[name], oth[name]
        diff = differences(a, b)
        worst = max(worst, abs((a.get("garment_confidence") or 0) - (b.get("garment_confidence") or 0)))
        main_a, main_b = (a["colours"][0]["family"] if a["colours"] else None,
                          b["colours"][0]["family"] if b["colours"] else None)
        bad = a["garment"] != b["garment"] or main_a != main_b
        differing += bool(diff)
        serious += bad
        print(f"{'WRONG' if bad else 'DIFF' if diff else 'same'}  {name}: {'; '.join(diff) or a['sentence']}")
    print(f"{len(ref) - differing}/{len(ref)} photos identical; garment and main colour family the same on "
          f"{len(ref) - serious}/{len(ref)}; largest confidence difference {worst:.4f} (tolerance {TOLERANCE})")
    return 1 if serious else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
