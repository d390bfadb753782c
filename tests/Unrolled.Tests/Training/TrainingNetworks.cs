using System;
using System.Collections.Generic;
using System.Linq;
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Threading;
using Unrolled.Runtime;
using Unrolled.Tests.Harness;
using Unrolled.Tests.Reference;
using Unrolled.Tests.Training;
using Xunit;

namespace Unrolled.Tests.Training
{
    // Networks for the training tests, compiled by the generator running as this project's analyzer.

    /// <summary>Which quadrant of a 12×12 image holds a bright 3×3 blob.</summary>
    [Network(1, 12, 12)]
    [Conv2D(8, 3, Padding = 1, Activation = Activation.ReLU)]
    [MaxPool2D(2)]
    [Conv2D(8, 3, Activation = Activation.ReLU)]
    [Flatten]
    [Dense(4)]
    public partial class QuadrantNet { }

    /// <summary>Regression: the mean brightness of each quadrant of a 12×12 image.</summary>
    [Network(1, 12, 12, Loss = Loss.MeanSquaredError)]
    [Conv2D(4, 3, Padding = 1, Activation = Activation.Tanh)]
    [AvgPool2D(2)]
    [Dense(4)]
    public partial class QuadrantBrightnessNet { }

    /// <summary>KerasBaseline (BENCHMARKS.md) scaled down to 3×16×16 and 32 hidden units: batch norm and two dropouts.</summary>
    [Network(3, 16, 16)]
    [Conv2D(6, 5, Padding = Padding.Same)]
    [BatchNorm]
    [ReLU]
    [MaxPool2D(2)]
    [Dropout(0.2)]
    [Dense(32, Activation = Activation.ReLU)]
    [Dropout(0.2)]
    [Dense(10)]
    public partial class SmallKeras { }

    /// <summary>PyTorch (a): Conv2d(1,2,3) ReLU MaxPool2d(2) Flatten Linear(8,3), cross-entropy.</summary>
    [Network(1, 6, 6)]
    [Conv2D(2, 3, Activation = Activation.ReLU)]
    [MaxPool2D(2)]
    [Flatten]
    [Dense(3)]
    public partial class TorchConvCe { }

    /// <summary>PyTorch (b1): Linear(4,3) Tanh Linear(3,2), mean squared error.</summary>
    [Network(4, Loss = Loss.MeanSquaredError)]
    [Dense(3)]
    [Tanh]
    [Dense(2)]
    public partial class TorchTanhMse { }

    /// <summary>PyTorch (b2): Linear(4,3,bias=False) BatchNorm1d(3) Sigmoid Linear(3,2), mean squared error.</summary>
    [Network(4, Loss = Loss.MeanSquaredError)]
    [Dense(3, Bias = false)]
    [BatchNorm]
    [Sigmoid]
    [Dense(2)]
    public partial class TorchBatchNormMse { }

    /// <summary>PyTorch (c): Conv2d(2,3,3,padding=1,bias=False) BatchNorm2d(3) ReLU Flatten Linear(48,2), cross-entropy.</summary>
    [Network(2, 4, 4)]
    [Conv2D(3, 3, Padding = 1, Bias = false)]
    [BatchNorm]
    [ReLU]
    [Flatten]
    [Dense(2)]
    public partial class TorchBatchNorm2d { }
}
