using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Unrolled.Generator.Model;

/// <summary>A shape: C × H × W for images, or Features × 1 × 1 when <see cref="IsFlat"/>.</summary>
internal readonly record struct Shape(int C, int H, int W, bool IsFlat)
{
    public int Size => C * H * W;
    public static Shape Image(int c, int h, int w) => new(c, h, w, false);
    public static Shape Flat(int features) => new(features, 1, 1, true);
    public override string ToString() => IsFlat ? C.ToString() : $"{C}×{H}×{W}";
}

internal enum LayerKind
{
    Conv2D, Dense, MaxPool2D, AvgPool2D, GlobalAvgPool2D, Flatten, BatchNorm, Dropout,
    LocalResponseNorm, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax,
}

/// <summary>The activation fused into a Conv2D or Dense layer (mirrors Unrolled.Activation).</summary>
internal enum Act { None = 0, ReLU = 1, LeakyReLU = 2, Sigmoid = 3, Tanh = 4 }

/// <summary>One layer after shape inference. Every number the emitter needs is resolved here.</summary>
internal sealed record LayerSpec(
    LayerKind Kind,
    string Name,
    Shape Input,
    Shape Output,
    // Convolution and pooling window.
    int KernelH, int KernelW, int Stride,
    int PadTop, int PadBottom, int PadLeft, int PadRight, bool SamePadding,
    // Conv2D / Dense.
    bool HasBias, Act Activation,
    // Offsets into Parameters (weight, bias) and Buffers (running mean, running var); -1 when absent.
    int WeightOffset, int BiasOffset, int BufferOffset, int CounterIndex,
    // Dropout p, LeakyReLU slope, LRN size/alpha/beta/k.
    double P, double Slope, int LrnSize, double Alpha, double Beta, double K,
    // The ordinal of this layer in the declaration (0-based).
    int Index)
{
    public int WeightCount => Kind switch
    {
        LayerKind.Conv2D => Output.C * Input.C * KernelH * KernelW,
        LayerKind.Dense => Output.C * Input.Size,
        LayerKind.BatchNorm => Input.C,
        _ => 0,
    };

    public int BiasCount => Kind switch
    {
        LayerKind.Conv2D or LayerKind.Dense => HasBias ? Output.C : 0,
        LayerKind.BatchNorm => Input.C,
        _ => 0,
    };

    public int ParameterCount => WeightCount + BiasCount;

    /// <summary>Multiply-adds per sample in the forward pass.</summary>
    public long MultiplyAdds => Kind switch
    {
        LayerKind.Conv2D => (long)Output.Size * Input.C * KernelH * KernelW,
        LayerKind.Dense => (long)Output.C * Input.Size,
        _ => 0,
    };
}

/// <summary>A network after parsing and shape inference: all the emitter reads.</summary>
internal sealed record NetworkSpec(
    string? Namespace,
    string ClassName,
    string Accessibility,
    Shape Input,
    int LossKind,
    EquatableArray<LayerSpec> Layers,
    int ParameterCount,
    int BufferCount,
    int CounterCount)
{
    public Shape Output => Layers[Layers.Count - 1].Output;
}

/// <summary>Where a diagnostic goes, as plain data (a Location holds the syntax tree and breaks caching).</summary>
internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
{
    /// <summary>A location in the compilation's tree for this file when there is one (so #pragma applies), else by path.</summary>
    public Location ToLocation(Compilation? compilation = null)
    {
        if (compilation is not null)
            foreach (SyntaxTree tree in compilation.SyntaxTrees)
                if (tree.FilePath == FilePath && Span.End <= tree.Length)
                    return Location.Create(tree, Span);
        return Location.Create(FilePath, Span, LineSpan);
    }

    public static LocationInfo? From(Location? location)
        => location is null || location.SourceTree is null
            ? null
            : new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);
}

/// <summary>A diagnostic as equatable data: the descriptor's id, where, and the message arguments.</summary>
internal sealed record DiagnosticInfo(string Id, LocationInfo? Location, EquatableArray<string> Arguments)
{
    public Diagnostic ToDiagnostic(Compilation? compilation = null)
        => Diagnostic.Create(Diagnostics.ById(Id), Location?.ToLocation(compilation), System.Linq.Enumerable.ToArray(System.Linq.Enumerable.Cast<object?>(Arguments)));
}

/// <summary>What the parser makes of one [Network] class: a spec when it compiles, and its diagnostics.</summary>
internal sealed record ParseResult(NetworkSpec? Spec, EquatableArray<DiagnosticInfo> Diagnostics, string HintName, LocationInfo? Location);
