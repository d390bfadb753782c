using Unrolled;

namespace FashionMnist;

/// <summary>LeNet-5 as in the benchmarks: 61,706 parameters.</summary>
[Network(1, 28, 28)]
[Conv2D(6, 5, Padding = 2, Activation = Activation.ReLU)]
[MaxPool2D(2)]
[Conv2D(16, 5, Activation = Activation.ReLU)]
[MaxPool2D(2)]
[Dense(120, Activation = Activation.ReLU)]
[Dense(84, Activation = Activation.ReLU)]
[Dense(10)]
public partial class LeNet5;

/// <summary>A stronger network: two VGG-style blocks with batch norm, then dropout before the classifier.</summary>
[Network(1, 28, 28)]
[Conv2D(32, 3, Padding = 1)]
[BatchNorm]
[ReLU]
[Conv2D(32, 3, Padding = 1)]
[BatchNorm]
[ReLU]
[MaxPool2D(2)]
[Conv2D(64, 3, Padding = 1)]
[BatchNorm]
[ReLU]
[Conv2D(64, 3, Padding = 1)]
[BatchNorm]
[ReLU]
[MaxPool2D(2)]
[Dropout(0.25)]
[Dense(256, Activation = Activation.ReLU)]
[Dropout(0.5)]
[Dense(10)]
public partial class FashionNet;
