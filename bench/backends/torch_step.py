"""PyTorch CPU reference for bench-backends (src/main.rs): same IResNet-18,
same loss, same SGD step, same timing protocol and RESULT line.

    .venv/bin/python torch_step.py --batch 8 --warmup 2 --steps 7
"""

import argparse
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout, init=0.25)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-5)
            )

    def forward(self, x):
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.conv1(self.bn1(x))
        out = self.prelu(self.bn2(out))
        out = self.bn3(self.conv2(out))
        return out + identity


class IResNet(nn.Module):
    def __init__(self, layers=(2, 2, 2, 2), emb=512, dropout=0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64, init=0.25)
        blocks, cin = [], 64
        for width, n in zip((64, 128, 256, 512), layers):
            for i in range(n):
                blocks.append(Block(cin, width, 2 if i == 0 else 1))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(512 * 7 * 7, emb)
        self.features = nn.BatchNorm1d(emb, eps=1e-5)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.bn2(self.blocks(x))
        x = self.dropout(torch.flatten(x, 1))
        return self.features(self.fc(x))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=7)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    net = nn.Sequential(IResNet(dropout=a.dropout), nn.Linear(512, a.classes))
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, 112, 112)
    y = torch.randint(0, a.classes, (a.batch,))
    n_params = sum(p.numel() for p in net.parameters())
    print(f"backend: pytorch {torch.__version__} threads={torch.get_num_threads()} params: {n_params}", flush=True)

    tot, fw, bw, up, cpu = [], [], [], [], []
    for step in range(a.warmup + a.steps):
        c0 = time.process_time()  # user + system CPU of the process, all threads
        t0 = time.perf_counter()
        loss = F.cross_entropy(net(x), y)
        loss_val = loss.item()
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        c = time.process_time() - c0
        warm = step < a.warmup
        print(
            f"step {step:2}{' (warm-up)' if warm else '          '} loss {loss_val:8.4f}  "
            f"total {t3 - t0:.3f}s  fwd {t1 - t0:.3f}s  bwd {t2 - t1:.3f}s  sgd {t3 - t2:.3f}s  cpu {c:.2f}s",
            flush=True,
        )
        if not warm:
            tot.append(t3 - t0)
            fw.append(t1 - t0)
            bw.append(t2 - t1)
            up.append(t3 - t2)
            cpu.append(c)
    med = statistics.median
    print(
        f'RESULT backend="pytorch {torch.__version__} CPU" batch={a.batch} steps={len(tot)} '
        f"median_s={med(tot):.3f} min_s={min(tot):.3f} max_s={max(tot):.3f} "
        f"fwd_s={med(fw):.3f} bwd_s={med(bw):.3f} sgd_s={med(up):.3f} cpu_s={med(cpu):.2f}"
    )


if __name__ == "__main__":
    main()
