"""Group `perf script` call-graph samples of bench-backends into coarse
buckets (phase x operation). Usage:

    perf record -e cpu-clock -F 299 --call-graph dwarf,16384 -o perf.data \
        target/release/bench-backends --warmup 0 --steps 1
    perf script -i perf.data -F comm,tid,ip,sym | python3 tools/perf_breakdown.py
"""

import collections
import re
import sys

BACKWARD_STEP = re.compile(r"::(\w+)::(\w+) as burn_autodiff::ops::backward::Backward<")


def classify(frames):
    text = "\n".join(frames)
    if "AutodiffServer::backward" in text:
        phase = "backward"
        for f in frames:  # leaf first: innermost backward step wins
            m = BACKWARD_STEP.search(f)
            if m:
                op = m.group(2)
                if op.startswith("Conv2D"):
                    if "conv2d_weight_backward" in text:
                        return phase, "conv2d weight grad"
                    if "conv2d_x_backward" in text or "conv_transpose" in text:
                        return phase, "conv2d input grad"
                    return phase, "conv2d (other)"
                return phase, f"{op} (elementwise/broadcast grad)"
        return phase, "graph bookkeeping / grad accumulation"
    if "burn_optim::" in text:
        return "sgd", "optimizer"
    if "bench_backends::run" not in text and "run<" not in text:
        if "rayon" in text:
            kind = "conv/gemm" if ("gemm" in text or "conv" in text) else "elementwise"
            return "rayon", f"{kind} on worker threads (fwd+bwd)"
        return "other", "other"
    if "Tensor<B,_,K>>::random" in text or "Initializer" in text:
        return "other", "init / data"
    # Leaf first: the innermost recognisable layer wins (inlined frames only
    # carry bare function names, hence the mix of patterns).
    for f in frames:
        for name, pats in (
            ("conv2d", ("Conv2d<B>::forward", "conv2d_f32", ">::conv2d")),
            ("PReLU", ("prelu",)),
            ("BatchNorm", ("forward_train", "forward_shared", "BatchNorm<B>::forward")),
            ("Linear", ("Linear<B>::forward", "::linear")),
            ("cross-entropy", ("CrossEntropyLoss", "log_softmax", "cross_entropy")),
        ):
            if any(p in f for p in pats):
                return "forward", name
    return "forward", "residual add / flatten / other"


def main():
    counts = collections.Counter()
    frames = []
    total = 0
    for line in list(sys.stdin) + [""]:
        if line.strip() == "":
            if frames:
                counts[classify(frames)] += 1
                total += 1
                frames = []
            continue
        if line.startswith((" ", "\t")):
            frames.append(line.strip())
    phases = collections.Counter()
    for (phase, _), n in counts.items():
        phases[phase] += n
    print(f"{total} samples")
    for phase, n in phases.most_common():
        print(f"{phase:9s} {100 * n / total:5.1f}%")
    print()
    for (phase, op), n in counts.most_common():
        print(f"{100 * n / total:5.1f}%  {phase:9s} {op}")


if __name__ == "__main__":
    main()
