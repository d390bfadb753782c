"""Command line for PyTorchInteropTests.cs.

  interop.py forward MODEL WEIGHTS INPUT BATCH OUTPUT STATE_JSON
      Loads a weight file the C# network saved into the PyTorch twin with load_state_dict(strict=True),
      runs it in eval mode on INPUT (raw float32), writes OUTPUT (raw float32) and every state_dict
      tensor as JSON ({name: {"dtype", "shape", "values"}}).

  interop.py export MODEL SEED BATCH WEIGHTS INPUT OUTPUT STATE_JSON
      Builds the twin after torch.manual_seed(SEED), gives its batch norms non-trivial affine parameters
      and running statistics (three training-mode passes), writes its state_dict as safetensors (in
      state_dict order), a fixed input, the eval-mode output on it, and the state as JSON.
"""
import json
import sys

import torch

import safetensors_lite as st
from interop_models import MODELS


def dump_state(model, path):
    state = {}
    for name, t in model.state_dict().items():
        state[name] = {"dtype": st.NAMES[t.dtype], "shape": list(t.shape),
                       "values": t.detach().reshape(-1).tolist()}
    with open(path, "w") as f:
        json.dump(state, f)


def forward(model_name, weights, input_path, batch, output_path, state_path):
    model = MODELS[model_name]()
    tensors, metadata = st.read(weights)
    if not metadata or metadata.get("format") != "pt":
        raise SystemExit(f"metadata {metadata!r} lacks format=pt")
    expected = model.state_dict()
    problems = []
    for name, t in tensors.items():
        if name in expected and (t.dtype != expected[name].dtype or tuple(t.shape) != tuple(expected[name].shape)):
            problems.append(f"{name}: file has {t.dtype} {tuple(t.shape)}, torch expects "
                            f"{expected[name].dtype} {tuple(expected[name].shape)}")
    if problems:
        raise SystemExit("\n".join(problems))
    model.load_state_dict(tensors, strict=True)
    model.eval()
    x = st.read_floats(input_path, (batch,) + model.input_shape)
    with torch.no_grad():
        y = model(x)
    st.write_floats(output_path, y)
    dump_state(model, state_path)
    print(json.dumps({"metadata": metadata, "names": list(tensors)}))


def export(model_name, seed, batch, weights, input_path, output_path, state_path):
    torch.manual_seed(seed)
    model = MODELS[model_name]()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
        model.train()
        for _ in range(3):
            model(torch.randn((16,) + model.input_shape) * 2 + 0.5)
    model.eval()
    x = torch.randn((batch,) + model.input_shape)
    with torch.no_grad():
        y = model(x)
    st.write(weights, model.state_dict(), {"format": "pt"})
    st.write_floats(input_path, x)
    st.write_floats(output_path, y)
    dump_state(model, state_path)


def main(argv):
    if len(argv) == 7 and argv[0] == "forward":
        forward(argv[1], argv[2], argv[3], int(argv[4]), argv[5], argv[6])
    elif len(argv) == 8 and argv[0] == "export":
        export(argv[1], int(argv[2]), int(argv[3]), argv[4], argv[5], argv[6], argv[7])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
