"""Reference numbers and fixtures for crates/visage-nn, from PyTorch.

Independent PyTorch implementations of the backbones, written from the layout
descriptions (insightface arcface_torch backbones/iresnet.py and
mobilefacenet.py, AdaFace net.py), with the reference implementations'
module names so that `state_dict()` keys are theirs. Writes:

- crates/visage-nn/tests/fixtures/backbone_counts.json: for every published
  architecture, parameters (all, and trainable only), conv+linear
  multiply-accumulates, BatchNorm and PReLU output elements, and the total
  ptflops' PyTorch backend would report (MACs + BN (x2 when affine) + PReLU +
  biases; AdaFace's parameter-free MaxPool2d(1, s) shortcut is left out, as in
  the Rust count), all per 112x112 face;
- crates/visage-nn/tests/fixtures/<name>.safetensors: the state dict of a tiny
  width-reduced network with seeded random weights and BatchNorm statistics,
  and <name>.io.safetensors: a fixed input batch and the eval-mode output.

Run (torch 2.9 CPU, numpy): bench/backends/.venv/bin/python scripts/reference/backbones_reference.py
"""

import json
import struct
from pathlib import Path

import numpy as np
import torch
from torch import nn

FIXTURES = Path(__file__).resolve().parents[2] / "crates" / "visage-nn" / "tests" / "fixtures"


# ---------------------------------------------------------------- IResNet


def conv_bn(cin, cout, kernel, stride, padding, groups=1):
    return [nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False), nn.BatchNorm2d(cout)]


class Unit(nn.Module):
    """insightface IBasicBlock: names bn1 conv1 bn2 prelu conv2 bn3 downsample."""

    def __init__(self, cin, cout, stride, project):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(*conv_bn(cin, cout, 1, stride, 0)) if project else None
        self.stride = stride

    def forward(self, x):
        y = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return y + (self.downsample(x) if self.downsample is not None else x)


class InsightfaceIResNet(nn.Module):
    def __init__(self, blocks, widths=(64, 128, 256, 512), stem=64, embedding=512, input_size=112):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.prelu = nn.PReLU(stem)
        cin = stem
        for index, (count, width) in enumerate(zip(blocks, widths)):
            units = []
            for unit in range(count):
                stride = 2 if unit == 0 else 1
                units.append(Unit(cin, width, stride, project=stride != 1 or cin != width))
                cin = width
            setattr(self, f"layer{index + 1}", nn.Sequential(*units))
        side = input_size // 16
        self.bn2 = nn.BatchNorm2d(cin)
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(cin * side * side, embedding)
        self.features = nn.BatchNorm1d(embedding)
        self.features.weight.requires_grad = False

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.features(self.fc(self.dropout(torch.flatten(self.bn2(x), 1))))


class AdafaceUnit(nn.Module):
    """AdaFace BasicBlockIR: res_layer (BN conv BN PReLU conv BN), shortcut_layer."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        if cin == cout:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(*conv_bn(cin, cout, 1, stride, 0))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        # net.py's order (shortcut first): an ONNX export lists the nodes in this order.
        shortcut = self.shortcut_layer(x)
        return self.res_layer(x) + shortcut


class AdafaceIResNet(nn.Module):
    def __init__(self, blocks, widths=(64, 128, 256, 512), stem=64, embedding=512, input_size=112):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.PReLU(stem))
        units, cin = [], stem
        for count, width in zip(blocks, widths):
            for unit in range(count):
                units.append(AdafaceUnit(cin, width, 2 if unit == 0 else 1))
                cin = width
        self.body = nn.Sequential(*units)
        side = input_size // 16
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Dropout(0.0),
            nn.Flatten(),
            nn.Linear(cin * side * side, embedding),
            nn.BatchNorm1d(embedding, affine=False),
        )

    def forward(self, x):
        return self.output_layer(self.body(self.input_layer(x)))


# ---------------------------------------------------------- MobileFaceNet


class ConvBlock(nn.Module):
    def __init__(self, cin, cout, kernel, stride, padding, groups=1, activation=True):
        super().__init__()
        parts = conv_bn(cin, cout, kernel, stride, padding, groups)
        if activation:
            parts.append(nn.PReLU(cout))
        self.layers = nn.Sequential(*parts)

    def forward(self, x):
        return self.layers(x)


class Bottleneck(nn.Module):
    """insightface DepthWise: expand 1x1, depthwise 3x3, project 1x1 (no PReLU)."""

    def __init__(self, cin, cout, expansion, stride, residual):
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(
            ConvBlock(cin, expansion, 1, 1, 0),
            ConvBlock(expansion, expansion, 3, stride, 1, groups=expansion),
            ConvBlock(expansion, cout, 1, 1, 0, activation=False),
        )

    def forward(self, x):
        y = self.layers(x)
        return x + y if self.residual else y


class Stage(nn.Module):
    def __init__(self, channels, count, expansion):
        super().__init__()
        self.layers = nn.Sequential(*[Bottleneck(channels, channels, expansion, 1, True) for _ in range(count)])

    def forward(self, x):
        return self.layers(x)


class Head(nn.Module):
    def __init__(self, width, side, embedding):
        super().__init__()
        self.layers = nn.Sequential(
            ConvBlock(width, width, side, 1, 0, groups=width, activation=False),
            nn.Flatten(),
            nn.Linear(width, embedding, bias=False),
            nn.BatchNorm1d(embedding),
        )

    def forward(self, x):
        return self.layers(x)


class MobileFaceNet(nn.Module):
    def __init__(self, blocks=(1, 4, 6, 2), stem=128, body=256, stem_groups=64, residual=(128, 128, 256, 256),
                 downsample=(128, 256, 512), head=512, embedding=512, input_size=112):
        super().__init__()
        layers = [ConvBlock(3, stem, 3, 2, 1)]
        if blocks[0] == 1:
            layers.append(ConvBlock(stem, stem, 3, 1, 1, groups=stem_groups))
        else:
            layers.append(Stage(stem, blocks[0], residual[0]))
        layers += [
            Bottleneck(stem, stem, downsample[0], 2, False),
            Stage(stem, blocks[1], residual[1]),
            Bottleneck(stem, body, downsample[1], 2, False),
            Stage(body, blocks[2], residual[2]),
            Bottleneck(body, body, downsample[2], 2, False),
            Stage(body, blocks[3], residual[3]),
        ]
        self.layers = nn.ModuleList(layers)
        self.conv_sep = ConvBlock(body, head, 1, 1, 0)
        self.features = Head(head, input_size // 16, embedding)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.features(self.conv_sep(x))


# ------------------------------------------------------------------ counts


def count(model, input_size=112):
    """Conv/linear MACs, BN and PReLU elements of one forward pass, by hooks."""
    tally = {"macs": 0, "bias": 0, "bn_elements": 0, "bn_affine_elements": 0, "prelu_elements": 0}

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            per_output = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]
            tally["macs"] += output.numel() * per_output
            tally["bias"] += output.numel() if module.bias is not None else 0
        elif isinstance(module, nn.Linear):
            tally["macs"] += inputs[0].numel() * module.out_features
            tally["bias"] += module.out_features if module.bias is not None else 0
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            tally["bn_elements"] += output.numel()
            tally["bn_affine_elements"] += output.numel() if module.affine else 0
        elif isinstance(module, nn.PReLU):
            tally["prelu_elements"] += output.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size))
    for handle in handles:
        handle.remove()
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ptflops_style = (tally["macs"] + tally["bias"] + tally["bn_elements"] + tally["bn_affine_elements"]
                     + tally["prelu_elements"])
    return {
        "params": params,
        "params_trainable": trainable,
        "macs": tally["macs"],
        "norm_elements": tally["bn_elements"],
        "activation_elements": tally["prelu_elements"],
        "ptflops_pytorch_backend_total": ptflops_style,
    }


IRESNET_BLOCKS = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
    "iresnet200": (6, 26, 60, 6),
}


def write_counts():
    counts = {}
    for name, blocks in IRESNET_BLOCKS.items():
        counts[f"{name}/insightface"] = count(InsightfaceIResNet(blocks))
        if name != "iresnet200":
            counts[f"{name}/adaface"] = count(AdafaceIResNet(blocks))
    counts["mobilefacenet/insightface"] = count(MobileFaceNet())
    counts["mobilefacenet_128/insightface"] = count(MobileFaceNet(embedding=128))
    counts["mobilefacenet_large/insightface"] = count(
        MobileFaceNet(blocks=(2, 8, 12, 4), stem=256, body=512))
    for key, value in counts.items():
        print(f"{key:34s} params {value['params'] / 1e6:8.3f} M  MACs {value['macs'] / 1e9:7.3f} G  "
              f"ptflops-style {value['ptflops_pytorch_backend_total'] / 1e9:7.3f} G")
    (FIXTURES / "backbone_counts.json").write_text(json.dumps(counts, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------- fixtures


def write_safetensors(path, tensors):
    """safetensors: u64 header length, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for key, tensor in tensors.items():
        array = tensor.detach().cpu().contiguous().numpy()
        dtype = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}[array.dtype]
        blob = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[key] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def randomise(model, generator):
    """Seeded weights and BatchNorm statistics far from their defaults, so a
    parameter loaded into the wrong place changes the output."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.dtype != torch.float32:
                continue
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif name.endswith("running_mean") or name.endswith("bias"):
                tensor.copy_(0.2 * torch.randn(tensor.shape, generator=generator))
            elif tensor.dim() == 1:  # BN weight, PReLU slope
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            else:  # conv / linear weight, scaled by fan-in to keep activations O(1)
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=generator) / fan_in ** 0.5)


def write_fixture(name, model, input_size, generator):
    randomise(model, generator)
    model.eval()
    faces = torch.randn(2, 3, input_size, input_size, generator=generator)
    with torch.no_grad():
        output = model(faces)
    write_safetensors(FIXTURES / f"{name}.safetensors", model.state_dict())
    write_safetensors(FIXTURES / f"{name}.io.safetensors", {"input": faces, "output": output})
    size = (FIXTURES / f"{name}.safetensors").stat().st_size
    print(f"{name}: {len(model.state_dict())} tensors, {size} bytes, output |max| {output.abs().max():.3f}")


# The tiny shapes, shared with the Rust tests (crates/visage-nn/tests/parity.rs):
# IResNet: blocks (2,1,1,1), widths (8,8,16,16), stem 8, embedding 16, 48 px input
# (stage 1 keeps its width at stride 2, so insightface projects and AdaFace
# subsamples there; the second unit of stage 1 has the identity shortcut).
TINY_IRESNET = dict(blocks=(2, 1, 1, 1), widths=(8, 8, 16, 16), stem=8, embedding=16, input_size=48)
# MobileFaceNet: blocks (1,2,1,1) and (2,1,1,1) (both stem variants), widths 8/16,
# stem groups 4, expansions (8,8,16,16) and (8,16,32), head 32, embedding 16, 48 px.
TINY_MBF = dict(stem=8, body=16, stem_groups=4, residual=(8, 8, 16, 16), downsample=(8, 16, 32), head=32,
                embedding=16, input_size=48)


def main():
    torch.manual_seed(0)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    write_counts()
    generator = torch.Generator().manual_seed(20240607)
    write_fixture("iresnet_tiny_insightface", InsightfaceIResNet(**TINY_IRESNET), 48, generator)
    write_fixture("iresnet_tiny_adaface", AdafaceIResNet(**TINY_IRESNET), 48, generator)
    write_fixture("mobilefacenet_tiny", MobileFaceNet(blocks=(1, 2, 1, 1), **TINY_MBF), 48, generator)
    write_fixture("mobilefacenet_tiny_stage1", MobileFaceNet(blocks=(2, 1, 1, 1), **TINY_MBF), 48, generator)


if __name__ == "__main__":
    main()
