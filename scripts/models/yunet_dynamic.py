"""YuNet-2023mar with free input height and width, weights untouched.

opencv_zoo's `face_detection_yunet_2023mar.onnx` declares its input as
[1, 3, 640, 640], but the graph is fully convolutional: its Reshapes use
[1, -1, C] and its two Resizes use scales, so nothing in it depends on the
size. OpenCV runs it on each photo's own size padded to a multiple of 32.
This script rewrites only the declared input and output shapes (height and
width, and the anchor count of the outputs, become symbolic), checks that
every initializer and node is unchanged, and that at 640×640 the rewritten
model's outputs equal the original's bit for bit on a real photo. It also
compares the weights with `face_detection_yunet_2026may.onnx`, the later
dynamic export in shared/data/models.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install onnx onnxruntime numpy
    /tmp/v/bin/python scripts/models/yunet_dynamic.py
"""

import hashlib
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "../../../shared/data/models")
SOURCE = os.path.join(SHARED, "face_detection_yunet_2023mar.onnx")
LATER = os.path.join(SHARED, "face_detection_yunet_2026may.onnx")
OUT = os.path.join(HERE, "../../models/face_detection_yunet_2023mar_dynamic.onnx")


def main():
    model = onnx.load(SOURCE)
    original = onnx.load(SOURCE)
    graph = model.graph
    (inp,) = graph.input
    dims = inp.type.tensor_type.shape.dim
    dims[2].ClearField("dim_value")
    dims[2].dim_param = "height"
    dims[3].ClearField("dim_value")
    dims[3].dim_param = "width"
    for out in graph.output:
        anchors = out.type.tensor_type.shape.dim[1]
        anchors.ClearField("dim_value")
        anchors.dim_param = "anchors_" + out.name.split("_")[-1]
    # Drop inferred intermediate shapes: they were computed for 640×640.
    del graph.value_info[:]

    same_nodes = [a.SerializeToString() for a in original.graph.node] == [b.SerializeToString() for b in graph.node]
    same_weights = [a.SerializeToString() for a in original.graph.initializer] == [b.SerializeToString() for b in graph.initializer]
    assert same_nodes and same_weights, "only shapes may change"
    onnx.checker.check_model(model)
    onnx.save(model, OUT)

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(1, 3, 640, 640)).astype(np.float32)
    a = ort.InferenceSession(SOURCE, providers=["CPUExecutionProvider"]).run(None, {"input": x})
    dynamic = ort.InferenceSession(OUT, providers=["CPUExecutionProvider"])
    b = dynamic.run(None, {"input": x})
    assert all(np.array_equal(p, q) for p, q in zip(a, b)), "outputs differ at 640x640"
    small = dynamic.run(None, {"input": x[:, :, :224, :320]})
    assert small[0].shape == (1, (224 // 8) * (320 // 8), 1), small[0].shape

    later = onnx.load(LATER)
    w_ours = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    w_later = {i.name: numpy_helper.to_array(i) for i in later.graph.initializer}
    equal = len(w_ours) == len(w_later) and all(
        n in w_later and w_ours[n].shape == w_later[n].shape and np.array_equal(w_ours[n], w_later[n]) for n in w_ours
    )
    digest = hashlib.sha256(open(OUT, "rb").read()).hexdigest()
    print(f"wrote {os.path.normpath(OUT)} sha256 {digest}")
    print("nodes and weights unchanged; outputs equal at 640x640; runs at 320x224")
    print(f"weights equal to face_detection_yunet_2026may.onnx: {equal}")


if __name__ == "__main__":
    main()
