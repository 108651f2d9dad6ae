"""Garment classification with a model bundle, on ONNX Runtime (default) or torch."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from wardrobe.bundle import Bundle, sha256_file
from wardrobe.errors import ModelError
from wardrobe.settings import RUNTIMES

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Prediction:
    """Calibrated class probabilities, best first."""

    ranked: list[tuple[str, float]]
    colour_families: list[tuple[str, float]] = field(default_factory=list)
    """The colour head's families, most likely first (empty without a colour head)."""
    occasions: list[tuple[str, float]] = field(default_factory=list)
    """Occasions ("usage:formal") whose probability clears the bundle's threshold, most likely first."""
    background: float = 0.0
    """Probability that no garment is in the photo (0 when the bundle has no background class)."""
    pattern: str | None = None
    """The pattern ("striped", "solid", ...) when the model is sure of it (its threshold); None otherwise."""
    pattern_probs: np.ndarray | None = None
    """The pattern head's probabilities in the bundle's pattern order (None without a pattern head)."""
    embedding: np.ndarray | None = None
    """The network's pooled features, L2-normalised (None when the bundle has no embedding output)."""

    @property
    def garment(self) -> str:
        """The most likely class."""
        return self.ranked[0][0]

    @property
    def confidence(self) -> float:
        """Its calibrated probability."""
        return self.ranked[0][1]


class Backend(Protocol):
    """Runs the network: a float32 NCHW batch in, logits (and the embedding, when the model has one) out."""

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Raw scores, shape (N, outputs)."""

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw scores and the pooled embedding (N, width), or None when the model has no embedding."""


class OnnxBackend:
    """ONNX Runtime on the CPU."""

    def __init__(self, path: Path, threads: int = 0, reference: bool = False) -> None:
        """reference: graph optimisations off, so an int8 (QDQ) model is computed as its reference arithmetic
        in float kernels (slower; never saturates), not in the processor's fused int8 kernels."""
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ModelError("onnxruntime is not installed: pip install onnxruntime") from e
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        if reference:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.log_severity_level = 3
        opts.enable_mem_pattern = False  # its plans are kept per input shape; 7 MB less, no slower (docs/speed.md)
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ModelError(f"ONNX Runtime cannot load {path}: {e}") from e
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelError(f"{path} is not a wardrobe model: it takes {len(inputs)} inputs "
                             f"({', '.join(i.name for i in inputs)}), not one batch of photos")
        self.input = inputs[0].name

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Run the session."""
        return self.forward(x)[0]

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Run the session: its first output is the logits, a second one the embedding."""
        try:
            outs = self.session.run(None, {self.input: x.astype(np.float32)})
        except Exception as e:  # ONNX Runtime's own errors: a model that does not fit its bundle's photos
            raise ModelError(f"the model cannot run on this bundle's photos: {str(e).splitlines()[0][:300]}") from e
        return np.asarray(outs[0]), (np.asarray(outs[1]) if len(outs) > 1 else None)


class TorchBackend:
    """torch with fp32 weights from safetensors; linear layers quantized to int8 dynamically."""

    def __init__(self, path: Path, arch: str, num_outputs: int, quantize: bool = True, threads: int = 0) -> None:
        try:
            import torch
            from safetensors.torch import load_file

            from wardrobe.nets import build
        except ImportError as e:
            raise ModelError("the torch runtime needs torch and safetensors: in the wardrobe source folder, pip install '.[train]'") from e
        if threads:
            torch.set_num_threads(threads)
        try:
            model = build(arch, num_outputs)
        except ImportError as e:
            raise ModelError(f"the torch runtime cannot build a {arch}: {e}") from e
        try:
            model.load_state_dict(load_file(str(path)))
        except Exception as e:
            raise ModelError(f"{path} does not fit a {arch} with {num_outputs} outputs: {e}") from e
        model.eval()
        if quantize:
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.model, self.torch = model, torch

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Forward pass without gradients."""
        return self.forward(x)[0]

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits, and the pooled features for networks that have them (EfficientNet-Lite). Photos run one
        at a time: dynamic quantization scales the linear layers' inputs by the whole batch's range, so a
        photo's answer would depend on the photos beside it."""
        if len(x) > 1:
            outs = [self.forward(x[i : i + 1]) for i in range(len(x))]
            embs = [e for _, e in outs]
            return (np.concatenate([z for z, _ in outs]),
                    None if embs[0] is None else np.concatenate(embs))
        with self.torch.inference_mode():
            t = self.torch.from_numpy(x)
            if hasattr(self.model, "pooled"):
                pooled = self.model.pooled(self.model.prefix(t, 0), 0)
                return self.model.net._fc(pooled).numpy(), pooled.numpy()
            return self.model(t).numpy(), None


SELF_CHECK_TOLERANCE = 0.5
"""Largest difference in any garment or colour-family probability between this processor's answer and the fp32
reference: int8 rounding moves them by up to a few tenths; saturated int8 kernels turn answers over."""
SELF_CHECK_MARGIN = 0.1
"""A reference answer this much ahead of the runner-up must come out the same here (closer calls may flip with
int8 rounding alone; a saturating processor turns clear answers: white shirts "yellow", red dresses "black")."""


def decided_otherwise(reference: np.ndarray, got: np.ndarray) -> bool:
    """Whether a clear reference answer (SELF_CHECK_MARGIN ahead) is not the answer here."""
    top = int(reference.argmax())
    runner = float(np.partition(reference, -2)[-2]) if len(reference) > 1 else 0.0
    return int(got.argmax()) != top and float(reference[top]) - runner >= SELF_CHECK_MARGIN


class Classifier:
    """A loaded bundle and backend: photo in, calibrated ranking out."""

    def __init__(self, bundle: Bundle, backend: Backend, runtime: str) -> None:
        self.bundle, self.backend, self.runtime = bundle, backend, runtime
        self.self_check = "not run"
        """How the model's answers on this processor compared with its fp32 references (check_here)."""
        self.agrees_here = True
        """False when the answers on this processor differ from the fp32 references and no fallback fixed it."""

    @classmethod
    def load(cls, path: Path | str, runtime: str | None = None, threads: int = 0) -> Classifier:
        """Verify a bundle and start the chosen runtime (the bundle's default if None)."""
        bundle = Bundle.load(path)
        runtime = runtime or bundle.default_runtime
        if runtime not in bundle.runtimes:
            raise ModelError(f"bundle {bundle.path} has no {runtime} weights (it has {', '.join(bundle.runtimes)})")
        f = bundle.path / bundle.runtimes[runtime]
        if runtime == "onnx":
            backend: Backend = OnnxBackend(f, threads)
        elif runtime == "torch":
            outputs = bundle.outputs
            backend = TorchBackend(f, bundle.arch, outputs, threads=threads)
        else:
            raise ModelError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
        clf = cls(bundle, backend, runtime)
        if runtime == "onnx":
            clf.check_here(threads)
        return clf

    def check_here(self, threads: int = 0) -> None:
        """Compare the model's answers on this processor with the fp32 answers the bundle carries for the sample
        photos. An int8 model that disagrees (the fused int8 kernels of a processor without VNNI saturate) is
        run as its reference arithmetic instead, so the user never hears a saturated answer; said in the journal
        and by `doctor` (self_check)."""
        problem = self.disagreement()
        if problem is None:
            self.self_check = "agrees with its fp32 references" if self.bundle.meta.get("self_check") else \
                "no references in the bundle (not checked)"
            return
        if self.bundle.meta.get("onnx_precision", "int8") != "int8":
            self.self_check = f"DISAGREES with its fp32 references on this processor ({problem})"
            self.agrees_here = False
            log.error("model %s %s", self.bundle.version, self.self_check)
            return
        self.backend = OnnxBackend(self.bundle.path / self.bundle.runtimes["onnx"], threads, reference=True)
        again = self.disagreement()
        self.self_check = (f"int8 kernels disagree with the fp32 references on this processor ({problem}); "
                           f"using the int8 reference arithmetic instead (slower)"
                           + (f", which disagrees too ({again})" if again else ""))
        self.agrees_here = again is None
        log.warning("model %s: %s", self.bundle.version, self.self_check)

    def disagreement(self) -> str | None:
        """Why this backend's answers on the bundle's reference photos differ from fp32's (None: they agree)."""
        from wardrobe.images import packaged_photos, read_image

        refs = self.bundle.meta.get("self_check")
        if not isinstance(refs, dict) or not refs:
            return None
        photos = {p.name: p for p in packaged_photos()}
        usable = [(photos[name], ref) for name, ref in refs.items()
                  if name in photos and isinstance(ref, dict) and ref.get("sha256") == sha256_file(photos[name])]
        if not usable:
            return None
        try:
            expected = np.array([ref["logits"] for _, ref in usable], np.float64)
        except (KeyError, TypeError, ValueError):
            return None
        if expected.shape[1:] != (self.bundle.outputs,):
            return f"the references hold {expected.shape[-1]} outputs, the model {self.bundle.outputs}"
        got = [self.probabilities_of([read_image(p)])[0] for p, _ in usable]  # one at a time: a batch of 8
        # would grow ONNX Runtime's memory arena for the daemon's whole life
        words = []
        n, f = len(self.bundle.classes), len(self.bundle.colour_families)
        for (p, _), z, (g, c, _, _, _) in zip(usable, expected, got, strict=True):
            eg, ec = softmax(z[:n] / self.bundle.temperature), softmax(z[n : n + f])
            if (decided_otherwise(eg, g) or (f and decided_otherwise(ec, c))
                    or max(abs(eg - g).max(), abs(ec - c).max() if f else 0.0) > SELF_CHECK_TOLERANCE):
                said = self.bundle.colour_families[int(c.argmax())] if f else ""
                meant = self.bundle.colour_families[int(ec.argmax())] if f else ""
                words.append(f"{p.name}: {self.bundle.classes[int(g.argmax())]} {said}".strip()
                             + f" where fp32 says {self.bundle.classes[int(eg.argmax())]} {meant}".rstrip())
        return f"{len(words)} of {len(usable)} photos: " + "; ".join(words[:2]) if words else None

    def probabilities(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                       np.ndarray | None]:
        """Temperature-scaled softmax over the garment classes, softmax over colour families, a sigmoid per
        occasion output, softmax over patterns, and the L2-normalised embedding (or None)."""
        return self.probabilities_of([rgb])[0]

    def probabilities_of(self, photos: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                        np.ndarray, np.ndarray | None]]:
        """probabilities() for several photos in one run of the network (cheaper than one run each)."""
        zs, embs = self.backend.forward(np.concatenate([self.bundle.preprocess(rgb) for rgb in photos]))
        b = self.bundle
        n, f, o = len(b.classes), len(b.colour_families), len(b.occasions)
        out = []
        for k in range(len(photos)):
            z = zs[k].astype(np.float64)
            if not np.all(np.isfinite(z)):
                raise ModelError("the model produced non-numbers (NaN or infinity)")
            if len(z) != b.outputs:
                raise ModelError(f"the model gives {len(z)} outputs but the bundle names {n} classes, {f} colour "
                                 f"families, {o} occasions and {len(b.patterns)} patterns")
            emb = unit(embs[k]) if embs is not None else None
            out.append((softmax(z[:n] / b.temperature), softmax(z[n : n + f]),
                        1 / (1 + np.exp(-z[n + f : n + f + o])), softmax(z[n + f + o :]), emb))
        return out

    def predict(self, rgb: np.ndarray, top: int = 3) -> Prediction:
        """The top classes with calibrated probabilities, the colour head's ranking, confident occasions,
        a confident pattern and the embedding."""
        return self.predict_many([rgb], top)[0]

    def predict_many(self, photos: list[np.ndarray], top: int = 3) -> list[Prediction]:
        """predict() for several photos in one run of the network."""
        return [self.prediction(*probs, top=top) for probs in self.probabilities_of(photos)]

    def predict_with_cutout(self, photo: np.ndarray, cutout: np.ndarray, top: int = 3) -> tuple[Prediction, Prediction]:
        """The photo's prediction, its garments read from the photo and the garment cut out on white together
        (the bundle's cutout_weight; the photo alone says whether a garment is there at all), and the
        cut-out's own prediction. One run of the network for both."""
        (p, c, o, pat, emb), cut = self.probabilities_of([photo, cutout])
        w = self.bundle.cutout_weight
        mixed = (1 - w) * p + w * cut[0]
        if self.bundle.background_class is not None:
            i = self.bundle.classes.index(self.bundle.background_class)
            mixed[i] = p[i]
        return self.prediction(mixed, c, o, pat, emb, top=top), self.prediction(*cut, top=top)

    def prediction(self, p: np.ndarray, c: np.ndarray, o: np.ndarray, pat: np.ndarray, emb: np.ndarray | None,
                   top: int = 3) -> Prediction:
        """A Prediction from the heads' probabilities."""
        classes = self.bundle.classes
        background = 0.0
        if self.bundle.background_class is not None:
            i = classes.index(self.bundle.background_class)
            background = float(p[i])
            p = p.copy()
            p[i] = -1.0  # never ranked as a garment
        order = np.argsort(-p)[:top]
        fams = [(self.bundle.colour_families[i], float(c[i])) for i in np.argsort(-c)] if len(c) else []
        occasions = sorted(((name, float(o[i])) for i, (name, threshold) in enumerate(self.bundle.occasions.items())
                            if o[i] >= threshold), key=lambda t: -t[1])
        pattern = None
        if len(pat):
            i = int(np.argmax(pat))
            name = list(self.bundle.patterns)[i]
            pattern = name if pat[i] >= self.bundle.patterns[name] else None
        return Prediction([(classes[i], float(p[i])) for i in order], fams, occasions, background, pattern,
                          pat if len(pat) else None, emb)


def unit(embedding) -> np.ndarray:
    """An embedding as float32 of length 1 (cosine similarity is then a dot product)."""
    emb = np.asarray(embedding, np.float32)
    return emb / max(float(np.linalg.norm(emb)), 1e-12)


def load_classifier(path: Path | None, runtime: str | None = None, threads: int = 0):
    """The classifier, or (None, reason) when the bundle is missing or broken; never raises."""
    if path is None:
        return None, "no model bundle is configured"
    try:
        return Classifier.load(path, runtime, threads), None
    except ModelError as e:
        return None, str(e)


def softmax(z: np.ndarray) -> np.ndarray:
    """Numerically safe softmax (empty in, empty out)."""
    if len(z) == 0:
        return z
    e = np.exp(z - z.max())
    return e / e.sum()
