#!/usr/bin/env bash
# Inference benchmarks, visage against the same models in Python, timed in
# the same run with the same thread count:
#   - `visage bench embed`: recogniser throughput (img/s) at batch 1 and 8 on
#     the reference aligned crops, against onnxruntime-python
#     (scripts/bench/infer_ort.py);
#   - `visage bench analyze`: photos/s of `visage analyze DIR --report …` on
#     shared/data/faces_small and faces, against the OpenCV + onnxruntime +
#     scikit-learn pipeline (scripts/bench/infer_pipeline.py).
# The Python side goes into scripts/bench/.venv (ignored by git) on first use,
# with the ONNX Runtime release visage loads.
#   scripts/bench/infer.sh                  # both benches, 2 threads each
#   THREADS=1 scripts/bench/infer.sh        # 1 thread each
#   RECOGNIZER=faceplugin_fr_feature_512d BENCHES=embed scripts/bench/infer.sh
#   BENCHES=prelu scripts/bench/infer.sh    # ONNX Runtime's PRelu vs a rewrite (Python only)
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS="${THREADS:-2}"
BENCHES="${BENCHES:-embed analyze}"
VENV=scripts/bench/.venv
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet \
    onnxruntime==1.31.1 opencv-python-headless==5.0.0.93 numpy==2.4.6 scikit-learn==1.9.1 onnx==1.23.2
nice -n 10 cargo build --release -p visage-cli
for bench in $BENCHES; do
    case "$bench" in
        embed)
            ./target/release/visage bench embed --threads "$THREADS" \
                --recognizer "${RECOGNIZER:-arcface_mobileface_128d_paddle}" \
                --runs "${RUNS:-7}" --ort-python "$VENV/bin/python" ;;
        analyze)
            ./target/release/visage bench analyze --threads "$THREADS" \
                --runs "${RUNS:-3}" --pipeline-python "$VENV/bin/python" ;;
        prelu)
            "$VENV/bin/python" scripts/bench/infer_prelu_rewrite.py --threads "$THREADS" ;;
        *) echo "unknown bench $bench (embed, analyze, prelu)" >&2; exit 2 ;;
    esac
done
