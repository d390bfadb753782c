using Unrolled;

// UNR0011 (a stride leaves the last row unread) is expected here: AlexNet, ResNet and the all-conv net do
// exactly that, and PyTorch floors the same way.
#pragma warning disable UNR0011

namespace Benchmarks
{
    // The benchmark suite beyond the four networks of BENCHMARKS.md (issue 12, item 3). Each network is
    // declared layer for layer like its PyTorch twin in peers/twins.py (same shapes, paddings, activations,
    // order and parameter count); peers/suite.spec gives the TorchSharp peer the same networks.

    // AlexNet shrunk to 3×64×64: a large strided kernel (11×11/4), LocalResponseNorm, overlapping 3×3/2 pools,
    // 3×3 convolutions on a 3×3 image, a last pool whose output is 1×1, dropout and a wide dense layer.
    [Network(3, 64, 64)]
    [Conv2D(48, 11, Stride = 4, Padding = 2, Activation = Activation.ReLU)]   // 48×15×15
    [LocalResponseNorm(5)]
    [MaxPool2D(3, Stride = 2)]                                                // 48×7×7
    [Conv2D(128, 5, Padding = 2, Activation = Activation.ReLU)]
    [LocalResponseNorm(5)]
    [MaxPool2D(3, Stride = 2)]                                                // 128×3×3
    [Conv2D(192, 3, Padding = 1, Activation = Activation.ReLU)]
    [Conv2D(192, 3, Padding = 1, Activation = Activation.ReLU)]
    [Conv2D(128, 3, Padding = 1, Activation = Activation.ReLU)]
    [MaxPool2D(3, Stride = 2)]                                                // 128×1×1
    [Dropout(0.5)]
    [Dense(1024, Activation = Activation.ReLU)]
    [Dropout(0.5)]
    [Dense(10)]
    public partial class AlexNetSmall { }

    // All-convolutional net (Springenberg et al.): 3×3 stride-2 convolutions instead of pools, 1×1
    // convolutions, GlobalAvgPool2D over 10 class maps.
    [Network(3, 32, 32)]
    [Conv2D(32, 3, Padding = 1, Activation = Activation.ReLU)]
    [Conv2D(32, 3, Stride = 2, Padding = 1, Activation = Activation.ReLU)]    // 32×16×16
    [Conv2D(64, 3, Padding = 1, Activation = Activation.ReLU)]
    [Conv2D(64, 3, Stride = 2, Padding = 1, Activation = Activation.ReLU)]    // 64×8×8
    [Conv2D(64, 3, Padding = 1, Activation = Activation.ReLU)]
    [Conv2D(64, 1, Activation = Activation.ReLU)]
    [Conv2D(10, 1)]
    [GlobalAvgPool2D]
    public partial class AllConv { }

    // LeNet as in LeCun et al. 1998: 1×32×32, tanh, average pools, the last convolution's output 1×1.
    [Network(1, 32, 32)]
    [Conv2D(6, 5, Activation = Activation.Tanh)]                              // 6×28×28
    [AvgPool2D(2)]
    [Conv2D(16, 5, Activation = Activation.Tanh)]                             // 16×10×10
    [AvgPool2D(2)]
    [Conv2D(120, 5, Activation = Activation.Tanh)]                            // 120×1×1
    [Dense(84, Activation = Activation.Tanh)]
    [Dense(10)]
    public partial class TanhLeNet { }

    // A ResNet stem and one bottleneck-like block without the skip: 7×7/2 convolution without bias, BatchNorm,
    // ReLU, padded 3×3/2 max pool, 1×1 and 3×3 convolutions, GlobalAvgPool2D, Dense.
    [Network(3, 64, 64)]
    [Conv2D(64, 7, Stride = 2, Padding = 3, Bias = false)]                    // 64×32×32
    [BatchNorm]
    [ReLU]
    [MaxPool2D(3, Stride = 2, Padding = 1)]                                   // 64×16×16
    [Conv2D(64, 1, Bias = false)]
    [BatchNorm]
    [ReLU]
    [Conv2D(128, 3, Padding = 1, Bias = false)]
    [BatchNorm]
    [ReLU]
    [GlobalAvgPool2D]
    [Dense(10)]
    public partial class ResStem { }

    // Many channels: 64 and 128-channel 3×3 layers.
    [Network(3, 32, 32)]
    [Conv2D(64, 3, Padding = 1, Activation = Activation.ReLU)]
    [MaxPool2D(2)]                                                            // 64×16×16
    [Conv2D(128, 3, Padding = 1, Activation = Activation.ReLU)]
    [MaxPool2D(2)]                                                            // 128×8×8
    [Conv2D(128, 3, Padding = 1, Activation = Activation.ReLU)]
    [MaxPool2D(2)]                                                            // 128×4×4
    [Dense(10)]
    public partial class Wide { }

    // VGG blocks with BatchNorm after every convolution (convolutions without bias) and after the hidden dense layer.
    [Network(3, 32, 32)]
    [Conv2D(32, 3, Padding = 1, Bias = false)]
    [BatchNorm]
    [ReLU]
    [Conv2D(32, 3, Padding = 1, Bias = false)]
    [BatchNorm]
    [ReLU]
    [MaxPool2D(2)]                                                            // 32×16×16
    [Conv2D(64, 3, Padding = 1, Bias = false)]
    [BatchNorm]
    [ReLU]
    [MaxPool2D(2)]                                                            // 64×8×8
    [Dense(128)]
    [BatchNorm]
    [ReLU]
    [Dense(10)]
    public partial class BnVgg { }

    // Odd, non-square image sizes with strides 2, sigmoid, an overlapping max pool and a padded average pool.
    [Network(3, 37, 45)]
    [Conv2D(16, 3, Stride = 2, Activation = Activation.Sigmoid)]              // 16×18×22
    [Conv2D(32, 4, Stride = 2, Padding = 1, Activation = Activation.ReLU)]    // 32×9×11
    [MaxPool2D(3, Stride = 2)]                                                // 32×4×5
    [Conv2D(48, 3, Padding = 1, Activation = Activation.Sigmoid)]             // 48×4×5
    [AvgPool2D(3, Stride = 2, Padding = 1)]                                   // 48×2×3
    [Dense(64, Activation = Activation.Sigmoid)]
    [Dense(10)]
    public partial class OddSizes { }

    // A small classifier ending in Softmax (inference returns probabilities; the loss is taken on the logits).
    [Network(1, 28, 28)]
    [Conv2D(8, 3, Padding = 1, Activation = Activation.ReLU)]                 // 8×28×28
    [AvgPool2D(2)]                                                            // 8×14×14
    [Conv2D(16, 3, Activation = Activation.ReLU)]                             // 16×12×12
    [AvgPool2D(3)]                                                            // 16×4×4
    [Dense(32, Activation = Activation.Tanh)]
    [Dense(10)]
    [Softmax]
    public partial class SoftmaxHead { }
}
