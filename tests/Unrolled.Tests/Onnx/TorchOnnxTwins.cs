namespace Unrolled.Tests.Onnx;

/// <summary>The PyTorch twins exported for OnnxImportTests (python; written to a temporary directory and run with /usr/bin/python3).</summary>
internal static class TorchOnnxTwins
{
    public const string Script = """"
# PyTorch twins of the examples' and tests' networks, exported with torch.onnx.export for OnnxImportTests.
# usage: python3 onnx_twins.py OUTDIR  → OUTDIR/{name}.onnx, {name}.input.bin, {name}.output.bin (float32 LE), manifest.txt
import sys, os, struct
import torch, torch.nn as nn, torch.nn.functional as F

torch.manual_seed(1234)
R = nn.ReLU
def conv(c, f, k, s=1, p=0, bias=True): return nn.Conv2d(c, f, k, stride=s, padding=p, bias=bias)

class Pad(nn.Module):
    """Keras-style Same as an explicit (asymmetric) zero Pad node: (left, right, top, bottom)."""
    def __init__(self, *p): super().__init__(); self.p = p
    def forward(self, x): return F.pad(x, self.p)

class ViewFlatten(nn.Module):
    def forward(self, x): return x.view(x.size(0), -1)

class MatMulAdd(nn.Module):
    """x @ W + b written out: exports MatMul + Add (as Keras' dense layers do through tf2onnx)."""
    def __init__(self, i, o):
        super().__init__(); self.w = nn.Parameter(torch.randn(i, o) / i ** 0.5); self.b = nn.Parameter(torch.randn(o) * 0.1)
    def forward(self, x): return torch.matmul(x, self.w) + self.b

class Net(nn.Module):
    """Named layers, so that the ONNX initializers are named like the state_dict (features.weight, fc1.bias …)."""
    def __init__(self, **layers):
        super().__init__()
        for k, v in layers.items(): self.add_module(k, v)
    def forward(self, x):
        for m in self.children(): x = m(x)
        return x

def bn_stats(m):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mod.running_mean.uniform_(-0.5, 0.5); mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-0.3, 0.3)
    return m

T = nn.Tanh; S = nn.Sigmoid
def keras_same():
    return Net(pad1=Pad(0, 1, 0, 1), conv1=conv(2, 6, 3, s=2), act1=R(), pad2=Pad(0, 1, 0, 0), pool1=nn.MaxPool2d(2),
               conv2=conv(6, 8, 3, p=1), lrelu=nn.LeakyReLU(0.1), gap=nn.AdaptiveAvgPool2d(1), flat=ViewFlatten(),
               dense=MatMulAdd(8, 5), sm=nn.Softmax(dim=1))

twins = {
    # examples/FashionMnist/Networks.cs and tests/Benchmarks twins.py
    "lenet5": (nn.Sequential(conv(1, 6, 5, p=2), R(), nn.MaxPool2d(2), conv(6, 16, 5), R(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(400, 120), R(), nn.Linear(120, 84), R(), nn.Linear(84, 10)), (1, 28, 28), True),
    "simpleconvnet": (Net(conv1=conv(1, 30, 5), relu=R(), pool=nn.MaxPool2d(2), flat=ViewFlatten(),
                          fc1=nn.Linear(30 * 12 * 12, 100), relu2=R(), fc2=nn.Linear(100, 10)), (1, 28, 28), True),
    "kerasbaseline": (nn.Sequential(Pad(2, 2, 2, 2), conv(1, 6, 5), nn.BatchNorm2d(6), R(), Pad(0, 0, 0, 0), nn.MaxPool2d(2),
                                    nn.Dropout(0.2), nn.Flatten(), nn.Linear(6 * 14 * 14, 128), R(), nn.Dropout(0.2), nn.Linear(128, 10)), (1, 28, 28), False),
    "alexnet": (nn.Sequential(conv(3, 48, 11, s=4, p=2), R(), nn.LocalResponseNorm(5), nn.MaxPool2d(3, 2),
                              conv(48, 128, 5, p=2), R(), nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0), nn.MaxPool2d(3, 2),
                              nn.Dropout(0.5), nn.Flatten(), nn.Linear(128 * 3 * 3, 256), R(), nn.Dropout(0.5), nn.Linear(256, 10)), (3, 64, 64), True),
    "lenet_tanh": (nn.Sequential(conv(1, 6, 5), T(), nn.AvgPool2d(2), conv(6, 16, 5), T(), nn.AvgPool2d(2),
                                 conv(16, 120, 5), T(), nn.Flatten(), nn.Linear(120, 84), T(), nn.Linear(84, 10)), (1, 32, 32), True),
    "resnet_stem": (nn.Sequential(conv(3, 16, 7, s=2, p=3, bias=False), nn.BatchNorm2d(16), R(), nn.MaxPool2d(3, 2, padding=1),
                                  conv(16, 16, 1, bias=False), nn.BatchNorm2d(16), R(), conv(16, 32, 3, p=1, bias=False), nn.BatchNorm2d(32), R(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)), (3, 32, 32), True),
    "vgg_bn1d": (Net(c1=conv(3, 8, 3, p=1, bias=False), b1=nn.BatchNorm2d(8), r1=R(), p1=nn.MaxPool2d(2), fl=nn.Flatten(),
                     fc=nn.Linear(8 * 8 * 8, 32), bn=nn.BatchNorm1d(32, eps=1e-3), r2=R(), out=nn.Linear(32, 10)), (3, 16, 16), True),
    "odd_sigmoid": (nn.Sequential(conv(3, 16, 3, s=2), S(), conv(16, 32, 4, s=2, p=1), R(), nn.MaxPool2d(3, 2),
                                  conv(32, 48, 3, p=1), S(), nn.AvgPool2d(3, 2, padding=1, count_include_pad=True), nn.Flatten(),
                                  nn.Linear(48 * 2 * 3, 64), S(), nn.Linear(64, 10)), (3, 37, 45), True),
    "softmax_avg": (nn.Sequential(conv(1, 8, 3, p=1), R(), nn.AvgPool2d(2), conv(8, 16, 3), R(), nn.AvgPool2d(3), nn.Flatten(),
                                  nn.Linear(16 * 4 * 4, 32), nn.Tanh(), nn.Linear(32, 10), nn.Softmax(dim=1)), (1, 28, 28), True),
    # Keras-style Same through Pad: stride-2 3×3 on an even size pads one cell at the bottom and right; a Same max pool after a ReLU.
    "keras_same": (keras_same(), (2, 16, 14), True),
    # Older opsets: Pad's pads as an attribute (< 11), Softmax's axis coercing to 2-D (< 13), Dropout's ratio attribute.
    "keras_same_op9": (keras_same(), (2, 16, 14), False, 9),
    "lenet5_op7": (nn.Sequential(conv(1, 6, 5, p=2), R(), nn.MaxPool2d(2), conv(6, 16, 5), R(), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(400, 120), R(), nn.Linear(120, 84), R(), nn.Linear(84, 10)), (1, 28, 28), False, 7),
    "misc": (Net(conv1=conv(2, 6, 3, s=1, p=1), sig=S(), lrn=nn.LocalResponseNorm(3, alpha=0.5, beta=0.6, k=2.0),
                 mp=nn.MaxPool2d(3, 1, padding=1), ap=nn.AvgPool2d(3, 2, padding=1), conv2=nn.Conv2d(6, 5, (2, 3)), gap=nn.AdaptiveAvgPool2d(1),
                 fl=nn.Flatten(), dense=nn.Linear(5, 4), lr=nn.LeakyReLU(), sm=nn.Softmax(dim=1)), (2, 10, 10), True, 11),
}

out = sys.argv[1]
only = sys.argv[2:]
manifest = []
for name, (model, shape, dynamic, *opset) in twins.items():
    if only and name not in only: continue
    model = bn_stats(model).eval()
    x = torch.randn(3, *shape)
    with torch.no_grad(): y = model(x)
    path = os.path.join(out, name + ".onnx")
    kw = dict(input_names=["input"], output_names=["output"], opset_version=opset[0] if opset else 13)
    if dynamic: kw["dynamic_axes"] = {"input": {0: "N"}, "output": {0: "N"}}
    torch.onnx.export(model, x, path, **kw)
    x.numpy().astype("<f4").tofile(os.path.join(out, name + ".input.bin"))
    y.numpy().astype("<f4").tofile(os.path.join(out, name + ".output.bin"))
    manifest.append(f"{name} {x.shape[0]} {x[0].numel()} {y[0].numel()}")
open(os.path.join(out, "manifest.txt"), "w").write("\n".join(manifest) + "\n")
print("exported", len(manifest))
"""";
}
