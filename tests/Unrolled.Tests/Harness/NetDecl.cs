using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace Unrolled.Tests.Harness;

/// <summary>The layer kinds of LAYERS.md, one per attribute.</summary>
public enum LayerKind
{
    Conv2D,
    Dense,
    MaxPool2D,
    AvgPool2D,
    GlobalAvgPool2D,
    Flatten,
    BatchNorm,
    Dropout,
    LocalResponseNorm,
    ReLU,
    LeakyReLU,
    Sigmoid,
    Tanh,
    Softmax,
}

/// <summary>A per-sample shape: C × H × W, or a vector of <see cref="C"/> features when <see cref="H"/> is 0
/// (the same convention as <see cref="NetworkAttribute"/>).</summary>
public readonly record struct Shape(int C, int H, int W)
{
    public static Shape Vector(int features) => new(features, 0, 0);

    public bool IsVector => H == 0;

    /// <summary>Floats per sample.</summary>
    public int Size => IsVector ? C : C * H * W;

    public override string ToString() => IsVector ? $"{C}" : $"{C}×{H}×{W}";
}

/// <summary>How a padding setting resolves along one axis: cells before, cells after, output length.</summary>
public readonly record struct AxisWindow(int PadBefore, int PadAfter, int Output)
{
    /// <summary>Resolves integer or Keras "same" padding (LAYERS.md, Conv2D row). Output is ≤ 0 when the
    /// kernel does not fit the padded input.</summary>
    public static AxisWindow Resolve(int input, int kernel, int stride, int padding)
    {
        if (padding == Unrolled.Padding.Same)
        {
            int output = (input + stride - 1) / stride;
            int total = Math.Max((output - 1) * stride + kernel - input, 0);
            return new AxisWindow(total / 2, total - total / 2, output);
        }
        int padded = input + 2 * padding;
        int outputLength = padded < kernel ? 0 : (padded - kernel) / stride + 1;
        return new AxisWindow(padding, padding, outputLength);
    }
}

/// <summary>One layer attribute: the kind and every option any kind has (each kind reads its own).</summary>
public sealed record LayerSpec
{
    public LayerKind Kind { get; init; }
    /// <summary>Conv2D output channels.</summary>
    public int Filters { get; init; }
    public int KernelHeight { get; init; }
    public int KernelWidth { get; init; }
    /// <summary>Conv2D and pooling stride (the same on both axes).</summary>
    public int Stride { get; init; } = 1;
    /// <summary>Cells on every side, or <see cref="Unrolled.Padding.Same"/>.</summary>
    public int Padding { get; init; }
    public bool Bias { get; init; } = true;
    /// <summary>The activation shorthand of Conv2D and Dense.</summary>
    public Activation Activation { get; init; }
    /// <summary>Dense output features.</summary>
    public int Units { get; init; }
    /// <summary>Pooling window (square) or LRN neighbourhood.</summary>
    public int Size { get; init; }
    /// <summary>Dropout probability.</summary>
    public double P { get; init; }
    public double Alpha { get; init; } = 1e-4;
    public double Beta { get; init; } = 0.75;
    public double K { get; init; } = 1.0;
    /// <summary>LeakyReLU negative slope.</summary>
    public double Slope { get; init; } = 0.01;
    /// <summary>An explicit layer name, or null for the default kind + ordinal.</summary>
    public string? Name { get; init; }

    /// <summary>A convolution with a <paramref name="kernel"/> of height × width cells.</summary>
    public static LayerSpec Conv(int filters, (int Height, int Width) kernel, int stride = 1, int padding = 0,
        bool bias = true, Activation activation = Activation.None) =>
        new() { Kind = LayerKind.Conv2D, Filters = filters, KernelHeight = kernel.Height, KernelWidth = kernel.Width,
                Stride = stride, Padding = padding, Bias = bias, Activation = activation };

    /// <summary>A convolution with a square kernel.</summary>
    public static LayerSpec Conv(int filters, int kernel, int stride = 1, int padding = 0, bool bias = true,
        Activation activation = Activation.None) => Conv(filters, (kernel, kernel), stride, padding, bias, activation);

    public static LayerSpec Dense(int units, bool bias = true, Activation activation = Activation.None) =>
        new() { Kind = LayerKind.Dense, Units = units, Bias = bias, Activation = activation };

    public static LayerSpec MaxPool(int size, int? stride = null, int padding = 0) =>
        new() { Kind = LayerKind.MaxPool2D, Size = size, Stride = stride ?? size, Padding = padding };

    public static LayerSpec AvgPool(int size, int? stride = null, int padding = 0) =>
        new() { Kind = LayerKind.AvgPool2D, Size = size, Stride = stride ?? size, Padding = padding };

    public static LayerSpec Lrn(int size, double alpha = 1e-4, double beta = 0.75, double k = 1.0) =>
        new() { Kind = LayerKind.LocalResponseNorm, Size = size, Alpha = alpha, Beta = beta, K = k };

    public static LayerSpec Dropout(double p) => new() { Kind = LayerKind.Dropout, P = p };

    public static LayerSpec LeakyReLU(double slope = 0.01) => new() { Kind = LayerKind.LeakyReLU, Slope = slope };

    public static LayerSpec Of(LayerKind kind) => new() { Kind = kind };

    /// <summary>The separate activation layer a shorthand stands for, or null for none.</summary>
    public static LayerSpec? ActivationLayer(Activation activation) => activation switch
    {
        Activation.None => null,
        Activation.ReLU => Of(LayerKind.ReLU),
        Activation.LeakyReLU => LeakyReLU(0.01),
        Activation.Sigmoid => Of(LayerKind.Sigmoid),
        Activation.Tanh => Of(LayerKind.Tanh),
        _ => throw new ArgumentOutOfRangeException(nameof(activation)),
    };

    /// <summary>The default name prefix of LAYERS.md ("conv" for conv1, conv2, …).</summary>
    public string DefaultPrefix => Kind switch
    {
        LayerKind.Conv2D => "conv",
        LayerKind.Dense => "dense",
        LayerKind.MaxPool2D => "maxpool",
        LayerKind.AvgPool2D => "avgpool",
        LayerKind.GlobalAvgPool2D => "gap",
        LayerKind.Flatten => "flatten",
        LayerKind.BatchNorm => "bn",
        LayerKind.Dropout => "dropout",
        LayerKind.LocalResponseNorm => "lrn",
        LayerKind.ReLU => "relu",
        LayerKind.LeakyReLU => "leakyrelu",
        LayerKind.Sigmoid => "sigmoid",
        LayerKind.Tanh => "tanh",
        LayerKind.Softmax => "softmax",
        _ => throw new ArgumentOutOfRangeException(),
    };

    /// <summary>The output shape for <paramref name="input"/>, or an error text when the layer cannot take it.</summary>
    public Shape OutputShape(Shape input, out string? error)
    {
        error = null;
        switch (Kind)
        {
            case LayerKind.Conv2D:
            case LayerKind.MaxPool2D:
            case LayerKind.AvgPool2D:
            {
                if (input.IsVector) { error = $"{Kind} needs a 3-D input, got {input}"; return default; }
                int kh = Kind == LayerKind.Conv2D ? KernelHeight : Size;
                int kw = Kind == LayerKind.Conv2D ? KernelWidth : Size;
                if (kh < 1 || kw < 1 || Stride < 1) { error = $"{Kind}: kernel and stride must be positive"; return default; }
                if (Padding < 0 && Padding != Unrolled.Padding.Same) { error = $"{Kind}: negative padding"; return default; }
                if (Kind != LayerKind.Conv2D && Padding != Unrolled.Padding.Same && Padding > Size / 2)
                { error = $"{Kind}: padding {Padding} exceeds half the window {Size}"; return default; }
                var rows = AxisWindow.Resolve(input.H, kh, Stride, Padding);
                var cols = AxisWindow.Resolve(input.W, kw, Stride, Padding);
                if (rows.Output < 1 || cols.Output < 1) { error = $"{Kind}: {kh}×{kw} window does not fit {input} with padding {Padding}"; return default; }
                return new Shape(Kind == LayerKind.Conv2D ? Filters : input.C, rows.Output, cols.Output);
            }
            case LayerKind.GlobalAvgPool2D:
            case LayerKind.Flatten:
                if (input.IsVector) { error = $"{Kind} needs a 3-D input, got {input}"; return default; }
                return Shape.Vector(Kind == LayerKind.Flatten ? input.Size : input.C);
            case LayerKind.Dense:
                return Shape.Vector(Units);
            case LayerKind.LocalResponseNorm:
                if (input.IsVector) { error = "LocalResponseNorm needs a 3-D input"; return default; }
                return input;
            case LayerKind.Softmax:
                if (!input.IsVector) { error = "Softmax needs a 1-D input"; return default; }
                return input;
            default:
                return input;
        }
    }

    /// <summary>The attribute text, e.g. <c>[Conv2D(6, 5, Padding = 2, Activation = Activation.ReLU)]</c>.</summary>
    public string ToAttribute()
    {
        var positional = new List<string>();
        var named = new List<string>();
        switch (Kind)
        {
            case LayerKind.Conv2D:
                positional.Add(Int(Filters));
                positional.Add(Int(KernelHeight));
                if (KernelWidth != KernelHeight) positional.Add(Int(KernelWidth));
                if (Stride != 1) named.Add($"Stride = {Int(Stride)}");
                if (Padding != 0) named.Add($"Padding = {PaddingText(Padding)}");
                if (!Bias) named.Add("Bias = false");
                if (Activation != Activation.None) named.Add($"Activation = Activation.{Activation}");
                break;
            case LayerKind.Dense:
                positional.Add(Int(Units));
                if (!Bias) named.Add("Bias = false");
                if (Activation != Activation.None) named.Add($"Activation = Activation.{Activation}");
                break;
            case LayerKind.MaxPool2D:
            case LayerKind.AvgPool2D:
                positional.Add(Int(Size));
                if (Stride != Size) named.Add($"Stride = {Int(Stride)}");
                if (Padding != 0) named.Add($"Padding = {PaddingText(Padding)}");
                break;
            case LayerKind.Dropout:
                positional.Add(Real(P));
                break;
            case LayerKind.LocalResponseNorm:
                positional.Add(Int(Size));
                if (Alpha != 1e-4) named.Add($"Alpha = {Real(Alpha)}");
                if (Beta != 0.75) named.Add($"Beta = {Real(Beta)}");
                if (K != 1.0) named.Add($"K = {Real(K)}");
                break;
            case LayerKind.LeakyReLU:
                if (Slope != 0.01) positional.Add(Real(Slope));
                break;
        }
        if (Name != null) named.Add($"Name = \"{Name}\"");
        var arguments = positional.Concat(named).ToList();
        return arguments.Count == 0 ? $"[{Kind}]" : $"[{Kind}({string.Join(", ", arguments)})]";
    }

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Real(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string PaddingText(int padding) => padding == Unrolled.Padding.Same ? "Padding.Same" : Int(padding);
}

/// <summary>
/// A test-side description of a network declaration: the input shape, the loss and the layers in order.
/// It writes itself as attribute source for the generator, and the reference reads it directly.
/// </summary>
public sealed class NetDecl
{
    public NetDecl(Shape input, Loss loss, IEnumerable<LayerSpec> layers)
    {
        Input = input;
        Loss = loss;
        Layers = layers.ToList();
    }

    public NetDecl(Shape input, IEnumerable<LayerSpec> layers) : this(input, Loss.CrossEntropy, layers) { }

    public Shape Input { get; }
    public Loss Loss { get; }
    public IReadOnlyList<LayerSpec> Layers { get; }

    /// <summary>The output shape of every layer, in order. Throws when the declaration is invalid.</summary>
    public IReadOnlyList<Shape> OutputShapes()
    {
        var shapes = new List<Shape>();
        var shape = Input;
        for (int i = 0; i < Layers.Count; i++)
        {
            shape = Layers[i].OutputShape(shape, out string? error);
            if (error != null) throw new InvalidOperationException($"layer {i} ({Layers[i].ToAttribute()}): {error}");
            shapes.Add(shape);
        }
        return shapes;
    }

    public Shape OutputShape => Layers.Count == 0 ? Input : OutputShapes()[^1];

    /// <summary>Each layer's name: its explicit Name, otherwise kind prefix + 1-based ordinal among that kind.</summary>
    public IReadOnlyList<string> LayerNames()
    {
        var ordinals = new Dictionary<LayerKind, int>();
        var names = new List<string>();
        foreach (var layer in Layers)
        {
            ordinals[layer.Kind] = ordinals.GetValueOrDefault(layer.Kind) + 1;
            names.Add(layer.Name ?? layer.DefaultPrefix + ordinals[layer.Kind]);
        }
        return names;
    }

    /// <summary>The declaration as C#: attributes on an empty partial class.</summary>
    public string ToSource(string className)
    {
        var text = new StringBuilder();
        text.Append("[Network(");
        text.Append(Input.IsVector ? $"{Input.C}" : $"{Input.C}, {Input.H}, {Input.W}");
        if (Loss != Loss.CrossEntropy) text.Append($", Loss = Loss.{Loss}");
        text.AppendLine(")]");
        foreach (var layer in Layers) text.AppendLine(layer.ToAttribute());
        text.AppendLine($"public partial class {className} {{ }}");
        return text.ToString();
    }

    /// <summary>A whole source file declaring several networks in one namespace.</summary>
    public static string ToSourceFile(string @namespace, IEnumerable<(string ClassName, NetDecl Decl)> networks)
    {
        var text = new StringBuilder();
        text.AppendLine("using Unrolled;");
        text.AppendLine();
        text.AppendLine($"namespace {@namespace};");
        foreach (var (className, decl) in networks)
        {
            text.AppendLine();
            text.Append(decl.ToSource(className));
        }
        return text.ToString();
    }

    /// <summary>One line for failure messages: input, loss and every layer with its output shape.</summary>
    public string Describe()
    {
        var shapes = OutputShapes();
        var parts = new List<string> { $"in {Input}" };
        for (int i = 0; i < Layers.Count; i++) parts.Add($"{Layers[i].ToAttribute()} → {shapes[i]}");
        return $"{Loss}: " + string.Join(", ", parts);
    }

    public override string ToString() => Describe();

    // ---------------------------------------------------------------- random declarations

    /// <summary>A random valid declaration. Shapes are tracked layer by layer, so every window fits
    /// its padded input, pooling padding stays within half the window, and Softmax sees a vector.</summary>
    public static NetDecl Random(Random rng, RandomDeclOptions? options = null)
    {
        options ??= new RandomDeclOptions();
        Shape input = rng.NextDouble() < options.VectorInputProbability
            ? Shape.Vector(rng.Next(1, 25))
            : new Shape(rng.Next(1, options.MaxInputChannels + 1), rng.Next(5, options.MaxInputSize + 1), rng.Next(5, options.MaxInputSize + 1));
        Shape shape = input;
        Loss loss = rng.NextDouble() < 0.7 ? Loss.CrossEntropy : Loss.MeanSquaredError;
        var layers = new List<LayerSpec>();
        int wanted = rng.Next(options.MinLayers, options.MaxLayers + 1);
        int explicitNames = 0;

        while (layers.Count < wanted)
        {
            LayerSpec layer = RandomLayer(rng, shape, options);
            if (rng.NextDouble() < 0.08) layer = layer with { Name = $"layer{explicitNames++}x" };
            shape = layer.OutputShape(shape, out string? error);
            if (error != null) throw new InvalidOperationException("random layer generator made an invalid layer: " + error);
            layers.Add(layer);
        }

        // Cross-entropy wants a vector of class scores; MSE networks may end on an image (fully convolutional).
        bool endOnVector = loss == Loss.CrossEntropy || rng.NextDouble() < 0.6;
        if (endOnVector && !shape.IsVector)
        {
            layers.Add(rng.Next(3) switch
            {
                0 => Of(LayerKind.GlobalAvgPool2D),
                1 => Of(LayerKind.Flatten),
                _ => RandomLayer(rng, LayerKind.Dense, shape, options),
            });
            shape = layers[^1].OutputShape(shape, out _);
        }
        if (shape.IsVector && loss == Loss.CrossEntropy && shape.C < 2)
        {
            layers.Add(LayerSpec.Dense(rng.Next(2, 11)));
            shape = layers[^1].OutputShape(shape, out _);
        }
        if (shape.IsVector && rng.NextDouble() < options.FinalSoftmaxProbability)
            layers.Add(Of(LayerKind.Softmax));

        return new NetDecl(input, loss, layers);
    }

    private static LayerSpec Of(LayerKind kind) => LayerSpec.Of(kind);

    private static Activation RandomActivation(Random rng) =>
        rng.NextDouble() < 0.4 ? Activation.None : (Activation)rng.Next(1, 5);

    private static int RandomPadding(Random rng, int max, double sameProbability) =>
        rng.NextDouble() < sameProbability ? Unrolled.Padding.Same : rng.Next(0, max + 1);

    /// <summary>Picks the kind of the next layer, weighted towards convolutions on images and dense layers on vectors.</summary>
    private static LayerKind RandomKind(Random rng, Shape shape)
    {
        if (shape.IsVector)
        {
            return rng.Next(10) switch
            {
                < 4 => LayerKind.Dense,
                4 => LayerKind.BatchNorm,
                5 => LayerKind.Dropout,
                _ => RandomActivationKind(rng),
            };
        }
        return rng.Next(20) switch
        {
            < 7 => LayerKind.Conv2D,
            < 10 => LayerKind.MaxPool2D,
            < 12 => LayerKind.AvgPool2D,
            12 => LayerKind.BatchNorm,
            13 => LayerKind.LocalResponseNorm,
            14 => LayerKind.Dropout,
            15 or 16 => RandomActivationKind(rng),
            17 => LayerKind.GlobalAvgPool2D,
            18 => LayerKind.Flatten,
            _ => LayerKind.Dense,
        };
    }

    private static LayerKind RandomActivationKind(Random rng) =>
        new[] { LayerKind.ReLU, LayerKind.LeakyReLU, LayerKind.Sigmoid, LayerKind.Tanh }[rng.Next(4)];

    private static LayerSpec RandomLayer(Random rng, Shape shape, RandomDeclOptions options) =>
        RandomLayer(rng, RandomKind(rng, shape), shape, options);

    /// <summary>A random layer of the given kind that is valid for <paramref name="shape"/>.</summary>
    public static LayerSpec RandomLayer(Random rng, LayerKind kind, Shape shape, RandomDeclOptions? options = null)
    {
        options ??= new RandomDeclOptions();
        switch (kind)
        {
            case LayerKind.Conv2D:
            {
                int padding = RandomPadding(rng, 2, 0.25);
                int maxKh = Math.Min(options.MaxKernel, padding == Unrolled.Padding.Same ? options.MaxKernel : shape.H + 2 * padding);
                int maxKw = Math.Min(options.MaxKernel, padding == Unrolled.Padding.Same ? options.MaxKernel : shape.W + 2 * padding);
                int kh = rng.Next(1, maxKh + 1);
                int kw = rng.NextDouble() < 0.7 && kh <= maxKw ? kh : rng.Next(1, maxKw + 1);
                return LayerSpec.Conv(rng.Next(1, options.MaxFilters + 1), (kh, kw), rng.Next(1, 4), padding,
                    rng.Next(4) != 0, RandomActivation(rng));
            }
            case LayerKind.MaxPool2D:
            case LayerKind.AvgPool2D:
            {
                int size = rng.Next(2, 4);
                int padding = RandomPadding(rng, size / 2, 0.2);
                // Integer padding is at most size / 2, so the padded input always holds a window of 2;
                // a window of 3 needs one more look.
                if (padding != Unrolled.Padding.Same && (shape.H + 2 * padding < size || shape.W + 2 * padding < size))
                    padding = size / 2;
                int stride = rng.NextDouble() < 0.4 ? size : rng.Next(1, 4);
                return kind == LayerKind.MaxPool2D ? LayerSpec.MaxPool(size, stride, padding) : LayerSpec.AvgPool(size, stride, padding);
            }
            case LayerKind.LocalResponseNorm:
                return LayerSpec.Lrn(rng.Next(1, 6),
                    alpha: rng.NextDouble() < 0.3 ? 1e-4 : Math.Round(0.05 + rng.NextDouble(), 3),
                    beta: rng.NextDouble() < 0.5 ? 0.75 : Math.Round(0.5 + rng.NextDouble() * 0.5, 3),
                    k: rng.NextDouble() < 0.5 ? 1.0 : Math.Round(1 + rng.NextDouble(), 3));
            case LayerKind.Dense:
                return LayerSpec.Dense(rng.Next(1, options.MaxUnits + 1), rng.Next(4) != 0, RandomActivation(rng));
            case LayerKind.Dropout:
                return LayerSpec.Dropout(options.DropoutProbabilityZero ? 0.0 : new[] { 0.0, 0.1, 0.25, 0.5 }[rng.Next(4)]);
            case LayerKind.LeakyReLU:
                return rng.Next(2) == 0 ? LayerSpec.LeakyReLU() : LayerSpec.LeakyReLU(Math.Round(0.05 + rng.NextDouble() * 0.3, 3));
            default:
                return Of(kind);
        }
    }
}

/// <summary>Knobs of <see cref="NetDecl.Random"/>.</summary>
public sealed record RandomDeclOptions
{
    public int MinLayers { get; init; } = 1;
    public int MaxLayers { get; init; } = 6;
    public int MaxFilters { get; init; } = 8;
    public int MaxKernel { get; init; } = 5;
    public int MaxUnits { get; init; } = 20;
    public int MaxInputChannels { get; init; } = 4;
    /// <summary>Input height and width are drawn from 5 to this.</summary>
    public int MaxInputSize { get; init; } = 20;
    public double VectorInputProbability { get; init; } = 0.12;
    public double FinalSoftmaxProbability { get; init; } = 0.25;
    /// <summary>Dropout layers get p = 0, so that training-mode results are deterministic and comparable.</summary>
    public bool DropoutProbabilityZero { get; init; }
}
