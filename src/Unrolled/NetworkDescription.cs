namespace Unrolled;

/// <summary>The kind of a layer, one per layer attribute.</summary>
public enum LayerType
{
    Conv2D, Dense, MaxPool2D, AvgPool2D, GlobalAvgPool2D, Flatten, BatchNorm, Dropout,
    LocalResponseNorm, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax,
}

/// <summary>A per-sample shape: <c>C × H × W</c> for an image, or <see cref="C"/> features when <see cref="IsVector"/>
/// (then H = W = 1).</summary>
public readonly record struct LayerShape(int C, int H, int W, bool IsVector)
{
    /// <summary>Floats per sample.</summary>
    public int Size => C * H * W;

    /// <inheritdoc />
    public override string ToString() => IsVector ? C.ToString() : $"{C}×{H}×{W}";
}

/// <summary>One layer of a compiled network as the generator resolved it (every shape and padding explicit), in
/// declaration order; <see cref="INetwork.Layers"/> lists them. Exporters (ONNX) read the structure from here.</summary>
/// <param name="Type">The layer's kind.</param>
/// <param name="Name">Its name, the state_dict prefix of its tensors (<c>conv1</c>).</param>
/// <param name="Input">The per-sample input shape.</param>
/// <param name="Output">The per-sample output shape.</param>
/// <param name="KernelH">Convolution or pooling window height (0 for other layers).</param>
/// <param name="KernelW">Convolution or pooling window width (0 for other layers).</param>
/// <param name="Stride">Convolution or pooling stride (0 for other layers).</param>
/// <param name="PadTop">Rows of padding above the input.</param>
/// <param name="PadBottom">Rows of padding below.</param>
/// <param name="PadLeft">Columns of padding on the left.</param>
/// <param name="PadRight">Columns of padding on the right.</param>
/// <param name="SamePadding">The padding was declared <c>Padding.Same</c> (Keras); the pads above are its resolution.
/// An average pool with Same padding divides by the real cells, with integer padding by the whole window.</param>
/// <param name="HasBias">A Conv2D or Dense layer with a bias.</param>
/// <param name="Activation">The activation fused into a Conv2D or Dense layer.</param>
/// <param name="Slope">The negative slope of a LeakyReLU layer or of a fused LeakyReLU activation.</param>
/// <param name="LrnSize">LocalResponseNorm's window (channels).</param>
/// <param name="Alpha">LocalResponseNorm's α.</param>
/// <param name="Beta">LocalResponseNorm's β.</param>
/// <param name="K">LocalResponseNorm's k.</param>
/// <param name="DropoutP">Dropout's p.</param>
public sealed record LayerDescription(
    LayerType Type,
    string Name,
    LayerShape Input,
    LayerShape Output,
    int KernelH, int KernelW, int Stride,
    int PadTop, int PadBottom, int PadLeft, int PadRight, bool SamePadding,
    bool HasBias, Activation Activation, double Slope,
    int LrnSize, double Alpha, double Beta, double K,
    double DropoutP);
