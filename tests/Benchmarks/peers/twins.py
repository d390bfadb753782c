#!/usr/bin/env python3
"""PyTorch twins of the benchmark networks (tests/Benchmarks/Networks.cs and Suite.cs), timed like
shared/peers/torch_peer.py, and exported to ONNX for the ONNX Runtime peer.

Run with Debian's PyTorch (apt-get install -y python3-torch libopenblas0-pthread):
    /usr/bin/python3 twins.py [--models A,B] [--threads 1,2] [--quick]      # timing lines on stdout
    /usr/bin/python3 twins.py --export-onnx DIR [--models A,B]               # DIR/NAME.onnx, no timing
Each timing line has the format of BENCHMARKS.md with peer=pytorch. Parameter counts go to stderr
with the count our generator gives (PARAMS below, checked: a mismatch is reported).

Methodology (as torch_peer.py): 5 warm-up calls, then calls until at least 2 s (0.5 s with --quick) and
at least 10 calls; train = zero_grad, forward, mean cross-entropy against random labels, backward, SGD
lr 0.01 on a batch of 64; inference at batch 1 and 64 in eval mode, the better of eager (inference_mode)
and a frozen TorchScript trace.
"""
import argparse, os, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

R = nn.ReLU


def conv(c, f, k, s=1, p=0, bias=True):
    return nn.Conv2d(c, f, k, stride=s, padding=p, bias=bias)


class SoftmaxInEval(nn.Module):
    """Our [Softmax] as the last layer: inference returns probabilities, training's loss is taken on the logits."""
    def forward(self, x):
        return x if self.training else F.softmax(x, dim=1)


def lenet5():
    return nn.Sequential(conv(1, 6, 5, p=2), R(), nn.MaxPool2d(2), conv(6, 16, 5), R(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), R(), nn.Linear(120, 84), R(), nn.Linear(84, 10)), (1, 28, 28)

def simple_conv_net():
    return nn.Sequential(conv(1, 30, 5), R(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(30 * 12 * 12, 100), R(), nn.Linear(100, 10)), (1, 28, 28)

def keras_baseline():
    # Same padding of a 5×5 kernel at stride 1 is 2 on every side.
    return nn.Sequential(conv(3, 6, 5, p=2), nn.BatchNorm2d(6), R(), nn.MaxPool2d(2), nn.Dropout(0.2), nn.Flatten(),
                         nn.Linear(6 * 16 * 16, 128), R(), nn.Dropout(0.2), nn.Linear(128, 10)), (3, 32, 32)

def cifar_vgg():
    return nn.Sequential(conv(3, 32, 3, p=1), R(), conv(32, 32, 3, p=1), R(), nn.MaxPool2d(2),
                         conv(32, 64, 3, p=1), R(), conv(64, 64, 3, p=1), R(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64 * 8 * 8, 256), R(), nn.Linear(256, 10)), (3, 32, 32)

def alexnet_small():
    return nn.Sequential(conv(3, 48, 11, s=4, p=2), R(), nn.LocalResponseNorm(5), nn.MaxPool2d(3, 2),
                         conv(48, 128, 5, p=2), R(), nn.LocalResponseNorm(5), nn.MaxPool2d(3, 2),
                         conv(128, 192, 3, p=1), R(), conv(192, 192, 3, p=1), R(), conv(192, 128, 3, p=1), R(),
                         nn.MaxPool2d(3, 2), nn.Dropout(0.5), nn.Flatten(), nn.Linear(128, 1024), R(),
                         nn.Dropout(0.5), nn.Linear(1024, 10)), (3, 64, 64)

def all_conv():
    return nn.Sequential(conv(3, 32, 3, p=1), R(), conv(32, 32, 3, s=2, p=1), R(),
                         conv(32, 64, 3, p=1), R(), conv(64, 64, 3, s=2, p=1), R(),
                         conv(64, 64, 3, p=1), R(), conv(64, 64, 1), R(), conv(64, 10, 1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten()), (3, 32, 32)

def tanh_lenet():
    T = nn.Tanh
    return nn.Sequential(conv(1, 6, 5), T(), nn.AvgPool2d(2), conv(6, 16, 5), T(), nn.AvgPool2d(2),
                         conv(16, 120, 5), T(), nn.Flatten(), nn.Linear(120, 84), T(), nn.Linear(84, 10)), (1, 32, 32)

def res_stem():
    return nn.Sequential(conv(3, 64, 7, s=2, p=3, bias=False), nn.BatchNorm2d(64), R(), nn.MaxPool2d(3, 2, padding=1),
                         conv(64, 64, 1, bias=False), nn.BatchNorm2d(64), R(),
                         conv(64, 128, 3, p=1, bias=False), nn.BatchNorm2d(128), R(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10)), (3, 64, 64)

def wide():
    return nn.Sequential(conv(3, 64, 3, p=1), R(), nn.MaxPool2d(2), conv(64, 128, 3, p=1), R(), nn.MaxPool2d(2),
                         conv(128, 128, 3, p=1), R(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128 * 4 * 4, 10)), (3, 32, 32)

def bn_vgg():
    return nn.Sequential(conv(3, 32, 3, p=1, bias=False), nn.BatchNorm2d(32), R(),
                         conv(32, 32, 3, p=1, bias=False), nn.BatchNorm2d(32), R(), nn.MaxPool2d(2),
                         conv(32, 64, 3, p=1, bias=False), nn.BatchNorm2d(64), R(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64 * 8 * 8, 128), nn.BatchNorm1d(128), R(), nn.Linear(128, 10)), (3, 32, 32)

def odd_sizes():
    S = nn.Sigmoid
    # AvgPool2d's count_include_pad=True (the default) is our integer padding's divisor.
    return nn.Sequential(conv(3, 16, 3, s=2), S(), conv(16, 32, 4, s=2, p=1), R(), nn.MaxPool2d(3, 2),
                         conv(32, 48, 3, p=1), S(), nn.AvgPool2d(3, 2, padding=1, count_include_pad=True), nn.Flatten(),
                         nn.Linear(48 * 2 * 3, 64), S(), nn.Linear(64, 10)), (3, 37, 45)

def softmax_head():
    return nn.Sequential(conv(1, 8, 3, p=1), R(), nn.AvgPool2d(2), conv(8, 16, 3), R(), nn.AvgPool2d(3), nn.Flatten(),
                         nn.Linear(16 * 4 * 4, 32), nn.Tanh(), nn.Linear(32, 10), SoftmaxInEval()), (1, 28, 28)

MODELS = {"LeNet5": lenet5, "SimpleConvNet": simple_conv_net, "KerasBaseline": keras_baseline, "CifarVgg": cifar_vgg,
          "AlexNetSmall": alexnet_small, "AllConv": all_conv, "TanhLeNet": tanh_lenet, "ResStem": res_stem,
          "Wide": wide, "BnVgg": bn_vgg, "OddSizes": odd_sizes, "SoftmaxHead": softmax_head}

# ParameterCount of our declarations (Networks.cs, Suite.cs), as the benchmark prints it.
PARAMS = {"LeNet5": 61706, "SimpleConvNet": 433890, "KerasBaseline": 198494, "CifarVgg": 1116970,
          "AlexNetSmall": 1088202, "AllConv": 107306, "TanhLeNet": 61706, "ResStem": 89034,
          "Wide": 243722, "BnVgg": 554730, "OddSizes": 41690, "SoftmaxHead": 9802}


def timed(fn, min_seconds):
    for _ in range(5):
        fn()
    n, start = 0, time.perf_counter()
    while True:
        fn(); n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and n >= 10:
            return elapsed / n


def report(model, mode, batch, threads, seconds):
    print(f"peer=pytorch model={model} mode={mode} batch={batch} threads={threads} "
          f"img_per_s={batch / seconds:.0f} us_per_batch={seconds * 1e6:.1f}", flush=True)


def check_params(name, net):
    n = sum(p.numel() for p in net.parameters())
    ok = "ok" if PARAMS.get(name) == n else f"MISMATCH (unrolled: {PARAMS.get(name)})"
    print(f"# {name}: parameters={n} {ok}", file=sys.stderr)


def export(names, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name in names:
        net, shape = MODELS[name]()
        check_params(name, net)
        net.eval()
        path = os.path.join(out_dir, name + ".onnx")
        torch.onnx.export(net, torch.randn(1, *shape), path, opset_version=13, do_constant_folding=True,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        print(f"# exported {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true", help="shorter timing windows")
    ap.add_argument("--export-onnx", metavar="DIR", help="write DIR/NAME.onnx for each model and exit")
    a = ap.parse_args()
    names = [m for m in a.models.split(",") if m]
    for name in names:
        if name not in MODELS:
            sys.exit(f"unknown model {name}; known: {','.join(MODELS)}")
    torch.manual_seed(0)
    if a.export_onnx:
        export(names, a.export_onnx)
        return
    window = 0.5 if a.quick else 2.0
    for threads in [int(t) for t in a.threads.split(",")]:
        torch.set_num_threads(threads)
        for name in names:
            net, shape = MODELS[name]()
            if threads == int(a.threads.split(",")[0]):
                check_params(name, net)
            net.train()
            opt = torch.optim.SGD(net.parameters(), lr=0.01)
            x, y = torch.randn(64, *shape), torch.randint(0, 10, (64,))
            def step():
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(x), y).backward()
                opt.step()
            report(name, "train", 64, threads, timed(step, window))
            net.eval()
            for batch in (1, 64):
                xb = torch.randn(batch, *shape)
                with torch.inference_mode():
                    eager = timed(lambda: net(xb), window)
                with torch.no_grad():
                    frozen = torch.jit.freeze(torch.jit.trace(net, xb))
                    jit = timed(lambda: frozen(xb), window)
                report(name, "infer", batch, threads, min(eager, jit))


if __name__ == "__main__":
    main()
