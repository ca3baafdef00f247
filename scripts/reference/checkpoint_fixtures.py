"""Fixtures for crates/visage-nn's checkpoint import tests, written by real
`torch.save` and `torch.onnx.export` (not by visage).

The tiny IResNet of backbones_reference.py (blocks (2,1,1,1), widths
(8,8,16,16), stem 8, 16-d feature, 48 px input) with seeded random weights,
saved the way each family saves its checkpoints:

- checkpoint_tiny_insightface.pth: arcface_torch, `torch.save(backbone.state_dict())`;
- checkpoint_tiny_magface.pth: MagFace, `{'epoch', 'arch', 'state_dict',
  'optimizer'}` with the backbone under `features.module.` and the MagLinear
  head weight `fc.weight` beside it; BatchNorm eps = 2e-5 as in MagFace's
  iresnet.py, running variances ~1e-3 so that the eps matters;
- checkpoint_tiny_adaface.ckpt: AdaFace (PyTorch Lightning), `state_dict`
  with the AdaFace-layout backbone under `model.` and the head's
  `head.kernel`, `head.t`, `head.batch_mean`, `head.batch_std` beside it;
- checkpoint_tiny.io.safetensors: a fixed input batch and each model's
  eval-mode output (`insightface`, `magface`, `adaface`);
- iresnet_tiny_insightface.onnx / iresnet_tiny_adaface.onnx: the insightface
  and AdaFace models above exported as insightface's torch2onnx.py does
  (eval mode, opset 11: PyTorch folds each conv -> BN pair into the conv);
- checkpoint_views.pth: half, bfloat16 and double tensors, two views into one
  storage (offset 3), an int64 scalar; checkpoint_noncontiguous.pth: a
  transposed view; checkpoint_legacy.pth: the pre-1.6 (non-zip) format.

Run: torch 2.9 (bench/backends/.venv) plus the `onnx` package for the export:
    bench/backends/.venv/bin/python -m pip install --target crates/visage-nn/.venv onnx==1.19.1
    PYTHONPATH=crates/visage-nn/.venv bench/backends/.venv/bin/python scripts/reference/checkpoint_fixtures.py
"""

import sys
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backbones_reference import (  # noqa: E402
    FIXTURES, TINY_IRESNET, AdafaceIResNet, InsightfaceIResNet, randomise, write_safetensors)


def tiny(model_class, generator, bn_eps=None):
    model = model_class(**TINY_IRESNET)
    if bn_eps is not None:
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.eps = bn_eps
    randomise(model, generator)
    return model.eval()


def main():
    generator = torch.Generator().manual_seed(20240817)
    faces = torch.randn(2, 3, 48, 48, generator=generator)
    outputs = {"input": faces}

    insightface = tiny(InsightfaceIResNet, generator)
    torch.save(insightface.state_dict(), FIXTURES / "checkpoint_tiny_insightface.pth")

    magface = tiny(InsightfaceIResNet, generator, bn_eps=2e-5)
    # Running variances of order 1e-3 (as trained networks have), scales shrunk
    # to match: there the eps (2e-5 vs 1e-5) moves the output by far more than 1e-4.
    with torch.no_grad():
        for module in magface.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.running_var.mul_(1e-3)
                module.weight.mul_(1e-3 ** 0.5)
    state = OrderedDict((f"features.module.{key}", value) for key, value in magface.state_dict().items())
    state["fc.weight"] = torch.randn(16, 4, generator=generator)  # MagLinear(embedding, classes)
    optimizer = {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "dampening": 0, "weight_decay": 5e-4,
                                                "nesterov": False, "params": list(range(len(state)))}]}
    torch.save({"epoch": 25, "arch": "iresnet_tiny", "state_dict": state, "optimizer": optimizer},
               FIXTURES / "checkpoint_tiny_magface.pth")

    adaface = tiny(AdafaceIResNet, generator)
    state = OrderedDict((f"model.{key}", value) for key, value in adaface.state_dict().items())
    state["head.kernel"] = torch.randn(16, 4, generator=generator)
    state["head.t"] = torch.zeros(1)
    state["head.batch_mean"] = torch.ones(1) * 20
    state["head.batch_std"] = torch.ones(1) * 100
    torch.save({"epoch": 26, "global_step": 4000, "pytorch-lightning_version": "1.8.6", "state_dict": state,
                "hyper_parameters": {"arch": "ir_tiny", "head": "adaface", "m": 0.4, "h": 0.333, "s": 64.0}},
               FIXTURES / "checkpoint_tiny_adaface.ckpt")

    with torch.no_grad():
        for name, model in [("insightface", insightface), ("magface", magface), ("adaface", adaface)]:
            outputs[name] = model(faces)
            print(f"{name}: output |max| {outputs[name].abs().max():.3f}")
    write_safetensors(FIXTURES / "checkpoint_tiny.io.safetensors", outputs)

    for name, model in [("insightface", insightface), ("adaface", adaface)]:
        torch.onnx.export(model, faces[:1], FIXTURES / f"iresnet_tiny_{name}.onnx", input_names=["data"],
                          keep_initializers_as_inputs=False, opset_version=11, dynamo=False)

    base = torch.arange(10, dtype=torch.float32)
    views = {
        "half": torch.tensor([1.0, -2.5, 65504.0], dtype=torch.float16),
        "bfloat": torch.tensor([[1.5, -3.0], [0.15625, 256.0]], dtype=torch.bfloat16),
        "double": torch.tensor([0.1, 2.0], dtype=torch.float64),
        "base": base,
        "window": base[3:7].view(2, 2),
        "steps": torch.tensor(7),
    }
    torch.save(views, FIXTURES / "checkpoint_views.pth")
    torch.save({"weight": torch.arange(6, dtype=torch.float32).view(2, 3).t()},
               FIXTURES / "checkpoint_noncontiguous.pth")
    torch.save({"weight": torch.ones(2)}, FIXTURES / "checkpoint_legacy.pth", _use_new_zipfile_serialization=False)
    for path in sorted(FIXTURES.glob("checkpoint_*")) + sorted(FIXTURES.glob("*.onnx")):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
