using Unrolled;

namespace Benchmarks
{
    // The four benchmark networks of BENCHMARKS.md, declared layer for layer like their PyTorch
    // equivalents in shared/peers/torch_peer.py (same shapes, paddings, activations and order).

    // nn.Conv2d(1, 6, 5, padding=2), ReLU, MaxPool2d(2), Conv2d(6, 16, 5), ReLU, MaxPool2d(2), Flatten,
    // Linear(400, 120), ReLU, Linear(120, 84), ReLU, Linear(84, 10)
    [Network(1, 28, 28)]
    [Conv2D(6, 5, Padding = 2, Activation = Activation.ReLU)]
    [MaxPool2D(2)]
    [Conv2D(16, 5, Activation = Activation.ReLU)]
    [MaxPool2D(2)]
    [Dense(120, Activation = Activation.ReLU)]
    [Dense(84, Activation = Activation.ReLU)]
    [Dense(10)]
    public partial class LeNet5 { }

    // nn.Conv2d(1, 30, 5), ReLU, MaxPool2d(2), Flatten, Linear(30*12*12, 100), ReLU, Linear(100, 10)
    [Network(1, 28, 28)]
    [Conv2D(30, 5, Activation = Activation.ReLU)]
    [MaxPool2D(2)]
    [Dense(100, Activation = Activation.ReLU)]
    [Dense(10)]
    public partial class SimpleConvNet { }

    // nn.Conv2d(3, 6, 5, padding=2), BatchNorm2d(6), ReLU, MaxPool2d(2), Dropout(0.2), Flatten,
    // Linear(6*16*16, 128), ReLU, Dropout(0.2), Linear(128, 10)
    [Network(3, 32, 32)]
    [Conv2D(6, 5, Padding = Padding.Same)]
    [BatchNorm]
    [ReLU]
    [MaxPool2D(2)]
    [Dropout(0.2)]
    [Dense(128, Activation = Activation.ReLU)]
    [Dropout(0.2)]
    [Dense(10)]
    public partial class KerasBaseline { }

    // nn.Conv2d(3, 32, 3, padding=1), ReLU, Conv2d(32, 32, 3, padding=1), ReLU, MaxPool2d(2),
    // Conv2d(32, 64, 3, padding=1), ReLU, Conv2d(64, 64, 3, padding=1), ReLU, MaxPool2d(2), Flatten,
    // Linear(64*8*8, 256), ReLU, Linear(256, 10)
    [Network(3, 32, 32)]
    [Conv2D(32, 3, Padding = 1, Activation = Activation.ReLU)]
    [Conv2D(32, 3, Padding = 1, Activation = Activation.ReLU)]
    [MaxPool2D(2)]
    [Conv2D(64, 3, Padding = 1, Activation = Activation.ReLU)]
    [Conv2D(64, 3, Padding = 1, Activation = Activation.ReLU)]
    [MaxPool2D(2)]
    [Dense(256, Activation = Activation.ReLU)]
    [Dense(10)]
    public partial class CifarVgg { }
}
