using Unrolled;

namespace FashionMnist;

// The seed networks, each declared once per input shape: the generator specialises the code for the shape, so
// a network for 1×28×28 images (Fashion-MNIST, MNIST) and one for 3×32×32 images (CIFAR-10) are two classes.
// Models.cs picks the class from --model and the data's shape. Layer names are the defaults (conv1, dense1, …),
// so weight files of the 28×28 LeNet5 are those of the README, the tests and PyTorch's twin.

// ------------------------------------------------------------------ LeNet-5

/// <summary>LeNet-5 as in the benchmarks (ReLU, max pooling): 61,706 parameters.</summary>
[Network(1, 28, 28)]
[Conv2D(6, 5, Padding = 2, Activation = Activation.ReLU)]
[MaxPool2D(2)]
[Conv2D(16, 5, Activation = Activation.ReLU)]
[MaxPool2D(2)]
[Dense(120, Activation = Activation.ReLU)]
[Dense(84, Activation = Activation.ReLU)]
[Dense(10)]
public partial class LeNet5;

/// <summary>LeNet-5 on 32×32 colour images, LeCun's own input size (no padding): 62,006 parameters.</summary>
[Network(3, 32, 32)]
[Conv2D(6, 5, Activation = Activation.ReLU)]
[MaxPool2D(2)]
[Conv2D(16, 5, Activation = Activation.ReLU)]
[MaxPool2D(2)]
[Dense(120, Activation = Activation.ReLU)]
[Dense(84, Activation = Activation.ReLU)]
[Dense(10)]
public partial class LeNet5Rgb32;

// ------------------------------------------------------------------ SimpleConvNet

/// <summary>"Deep Learning from Scratch"'s SimpleConvNet: Conv 30 5×5 (stride 1, no padding), ReLU, MaxPool 2×2/2, Dense 100 ReLU, Dense 10.</summary>
[Network(1, 28, 28)]
[Conv2D(30, 5, Activation = Activation.ReLU)]
[MaxPool2D(2)]
[Dense(100, Activation = Activation.ReLU)]
[Dense(10)]
public partial class SimpleConvNet;

/// <summary>SimpleConvNet on 3×32×32 input (30×14×14 before the dense layers).</summary>
[Network(3, 32, 32)]
[Conv2D(30, 5, Activation = Activation.ReLU)]
[MaxPool2D(2)]
[Dense(100, Activation = Activation.ReLU)]
[Dense(10)]
public partial class SimpleConvNetRgb32;

// ------------------------------------------------------------------ the seed's Keras baseline

/// <summary>
/// The seed's Keras Baseline: Conv2D(6, 5×5, padding="same"), BatchNormalization, ReLU, MaxPooling2D(2×2, 2,
/// padding="same"), Dropout(0.2), Flatten, Dense(128, relu), Dropout(0.2), Dense(10).
/// </summary>
[Network(1, 28, 28)]
[Conv2D(6, 5, Padding = Padding.Same)]
[BatchNorm]
[ReLU]
[MaxPool2D(2, Padding = Padding.Same)]
[Dropout(0.2)]
[Dense(128, Activation = Activation.ReLU)]
[Dropout(0.2)]
[Dense(10)]
public partial class KerasBaseline;

/// <summary>The Keras Baseline on CIFAR-10's 3×32×32 input, as the seed's script runs it.</summary>
[Network(3, 32, 32)]
[Conv2D(6, 5, Padding = Padding.Same)]
[BatchNorm]
[ReLU]
[MaxPool2D(2, Padding = Padding.Same)]
[Dropout(0.2)]
[Dense(128, Activation = Activation.ReLU)]
[Dropout(0.2)]
[Dense(10)]
public partial class KerasBaselineRgb32;

// ------------------------------------------------------------------ AlexNet-style

/// <summary>
/// AlexNet's recipe scaled to 28×28: a large first kernel with a stride (6×6/2, where AlexNet has 11×11/4 on
/// 224×224), local response normalisation (AlexNet's n 5, α 1e-4, β 0.75, k 2) after the first two convolutions,
/// 3×3/2 overlapping max pools over odd sizes as in AlexNet (so no row or column goes unread), then dropout 0.5
/// before each of the two wide dense layers. 64×15×15 → 64×7×7 → 128×7×7 → 128×3×3 → 1024 → 1024 → 10.
/// Two convolutions where AlexNet has five: on 7×7 and 3×3 maps its three 3×3 convolutions would train on the
/// direct kernels at a fraction of their speed (see the README's benchmark notes) for little accuracy here.
/// </summary>
[Network(1, 28, 28)]
[Conv2D(64, 6, Stride = 2, Padding = 3, Activation = Activation.ReLU)]
[LocalResponseNorm(5, Alpha = 1e-4, Beta = 0.75, K = 2)]
[MaxPool2D(3, Stride = 2)]
[Conv2D(128, 3, Padding = 1, Activation = Activation.ReLU)]
[LocalResponseNorm(5, Alpha = 1e-4, Beta = 0.75, K = 2)]
[MaxPool2D(3, Stride = 2)]
[Dropout(0.5)]
[Dense(1024, Activation = Activation.ReLU)]
[Dropout(0.5)]
[Dense(1024, Activation = Activation.ReLU)]
[Dense(10)]
public partial class AlexNet;

/// <summary>The AlexNet-style network on 3×32×32 input: an 8×8/2 first kernel (padding 2) to the same 64×15×15, then as the 28×28 one.</summary>
[Network(3, 32, 32)]
[Conv2D(64, 8, Stride = 2, Padding = 2, Activation = Activation.ReLU)]
[LocalResponseNorm(5, Alpha = 1e-4, Beta = 0.75, K = 2)]
[MaxPool2D(3, Stride = 2)]
[Conv2D(128, 3, Padding = 1, Activation = Activation.ReLU)]
[LocalResponseNorm(5, Alpha = 1e-4, Beta = 0.75, K = 2)]
[MaxPool2D(3, Stride = 2)]
[Dropout(0.5)]
[Dense(1024, Activation = Activation.ReLU)]
[Dropout(0.5)]
[Dense(1024, Activation = Activation.ReLU)]
[Dense(10)]
public partial class AlexNetRgb32;

// ------------------------------------------------------------------ FashionNet

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

/// <summary>FashionNet on 3×32×32 input (64×8×8 before the classifier).</summary>
[Network(3, 32, 32)]
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
public partial class FashionNetRgb32;
