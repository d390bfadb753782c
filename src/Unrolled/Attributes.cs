using System;

namespace Unrolled;

/// <summary>The loss a network trains with.</summary>
public enum Loss
{
    /// <summary>Mean cross-entropy over the batch with integer class labels (PyTorch CrossEntropyLoss).</summary>
    CrossEntropy = 0,
    /// <summary>Mean over all elements of the squared difference to the targets (PyTorch MSELoss).</summary>
    MeanSquaredError = 1,
}

/// <summary>An activation applied after a Conv2D or Dense layer (the shorthand for a separate activation layer).</summary>
public enum Activation
{
    /// <summary>No activation: the layer is linear.</summary>
    None = 0,
    /// <summary>max(x, 0).</summary>
    ReLU = 1,
    /// <summary>x for x &gt; 0, 0.01·x otherwise.</summary>
    LeakyReLU = 2,
    /// <summary>1 / (1 + e^-x).</summary>
    Sigmoid = 3,
    /// <summary>tanh(x).</summary>
    Tanh = 4,
}

/// <summary>Named padding modes for <see cref="Conv2DAttribute.Padding"/> and the pooling layers' Padding.
/// Any non-negative integer is a symmetric padding in cells.</summary>
public static class Padding
{
    /// <summary>Keras "same": the output is ceil(input / stride); the padding total is split, the extra cell at the bottom and right.</summary>
    public const int Same = int.MinValue;
    /// <summary>No padding.</summary>
    public const int Valid = 0;
}

/// <summary>Declares the class as a network with the given input shape (channels × height × width).
/// The layers are the layer attributes on the same class, in source order.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class NetworkAttribute : Attribute
{
    public NetworkAttribute(int channels, int height, int width) { Channels = channels; Height = height; Width = width; }
    /// <summary>Declares a network whose input is a vector of <paramref name="features"/> values.</summary>
    public NetworkAttribute(int features) { Channels = features; Height = 0; Width = 0; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    /// <summary>The training loss; cross-entropy by default.</summary>
    public Loss Loss { get; set; } = Loss.CrossEntropy;
}

/// <summary>Base of every layer attribute.</summary>
public abstract class LayerAttribute : Attribute
{
    /// <summary>The layer's name in summaries and weight files; by default its kind and ordinal (conv1, dense2, …).</summary>
    public string? Name { get; set; }
}

/// <summary>2-D convolution (cross-correlation) with <c>filters</c> output channels.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class Conv2DAttribute : LayerAttribute
{
    public Conv2DAttribute(int filters, int kernel) { Filters = filters; KernelHeight = kernel; KernelWidth = kernel; }
    public Conv2DAttribute(int filters, int kernelHeight, int kernelWidth) { Filters = filters; KernelHeight = kernelHeight; KernelWidth = kernelWidth; }
    public int Filters { get; }
    public int KernelHeight { get; }
    public int KernelWidth { get; }
    public int Stride { get; set; } = 1;
    /// <summary>Cells of zero padding on every side, or <see cref="Unrolled.Padding.Same"/> / <see cref="Unrolled.Padding.Valid"/>.</summary>
    public int Padding { get; set; }
    public bool Bias { get; set; } = true;
    public Activation Activation { get; set; }
}

/// <summary>Fully connected layer; a 3-D input is flattened (C, H, W order).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class DenseAttribute : LayerAttribute
{
    public DenseAttribute(int units) { Units = units; }
    public int Units { get; }
    public bool Bias { get; set; } = true;
    public Activation Activation { get; set; }
}

/// <summary>Max pooling over size × size windows (stride defaults to the size).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class MaxPool2DAttribute : LayerAttribute
{
    public MaxPool2DAttribute(int size) { Size = size; Stride = size; }
    public int Size { get; }
    public int Stride { get; set; }
    public int Padding { get; set; }
}

/// <summary>Average pooling over size × size windows (stride defaults to the size).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class AvgPool2DAttribute : LayerAttribute
{
    public AvgPool2DAttribute(int size) { Size = size; Stride = size; }
    public int Size { get; }
    public int Stride { get; set; }
    public int Padding { get; set; }
}

/// <summary>Mean over height and width of each channel.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class GlobalAvgPool2DAttribute : LayerAttribute { }

/// <summary>Flattens C × H × W to one vector in C, H, W order.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class FlattenAttribute : LayerAttribute { }

/// <summary>Batch normalisation per channel (after a 3-D shape) or per feature (after a 1-D shape); eps 1e-5, momentum 0.1.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class BatchNormAttribute : LayerAttribute { }

/// <summary>Inverted dropout with drop probability p in [0, 1); identity at inference.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class DropoutAttribute : LayerAttribute
{
    public DropoutAttribute(double p) { P = p; }
    public double P { get; }
}

/// <summary>Local response normalisation across channels (PyTorch LocalResponseNorm).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class LocalResponseNormAttribute : LayerAttribute
{
    public LocalResponseNormAttribute(int size) { Size = size; }
    public int Size { get; }
    public double Alpha { get; set; } = 1e-4;
    public double Beta { get; set; } = 0.75;
    public double K { get; set; } = 1.0;
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class ReLUAttribute : LayerAttribute { }

[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class LeakyReLUAttribute : LayerAttribute
{
    public LeakyReLUAttribute() { Slope = 0.01; }
    public LeakyReLUAttribute(double slope) { Slope = slope; }
    public double Slope { get; }
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class SigmoidAttribute : LayerAttribute { }

[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class TanhAttribute : LayerAttribute { }

/// <summary>Softmax over the features of each sample (1-D shapes only).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class SoftmaxAttribute : LayerAttribute { }
