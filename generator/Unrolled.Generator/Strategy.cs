using System.Linq;
using Unrolled.Generator.Model;

namespace Unrolled.Generator;

/// <summary>How a convolution is computed.</summary>
internal enum ConvStrategy
{
    /// <summary>The direct kernel: a register tile of filters × output rows × column vectors over a padded copy of
    /// the input (Emitter.Conv.cs). Its lanes run along the output columns.</summary>
    Direct,

    /// <summary>
    /// The kernel covers the whole unpadded input, so the output is 1×1 and the convolution is exactly a dense
    /// layer: weight [F, C, Kh, Kw] read as [F, C·H·W] is Dense's [U, In] layout, the input's C·H·W floats are its
    /// flattened input, and the F outputs are its units. It runs on the Dense kernels, which block samples so a
    /// weight row loaded serves several of them (the direct kernel would fill one lane of a vector per filter).
    /// </summary>
    DenseOverPatch,
}

/// <summary>
/// Chooses each layer's strategy from its shape, before anything is emitted.
/// Cost model: the direct kernel keeps Wo output columns in vector lanes, so its useful share of each FMA is
/// Wo / (vectors · lanes); with a 1×1 output that is 1/16 at 512 bits (one useful lane), while a dense layer's
/// lanes run along the C·Kh·Kw reduction and are all useful but the last vector's tail. So a convolution whose
/// kernel covers its whole unpadded input always goes to Dense; every other one stays direct.
/// </summary>
internal static class Strategy
{
    public static ConvStrategy Choose(LayerSpec l)
        => l.Kind == LayerKind.Conv2D && !l.Input.IsFlat
           && l.KernelH == l.Input.H && l.KernelW == l.Input.W
           && l.PadTop + l.PadBottom + l.PadLeft + l.PadRight == 0
            ? ConvStrategy.DenseOverPatch
            : ConvStrategy.Direct;

    /// <summary>The comment the generated code carries before a convolution's kernels.</summary>
    public static string Describe(LayerSpec l) => Choose(l) switch
    {
        ConvStrategy.DenseOverPatch => $"strategy: dense over the patch (the {l.KernelH}×{l.KernelW} kernel covers the whole {l.Input} input, output 1×1: a {l.Output.C} × {l.Input.Size} matrix–vector product per sample on the Dense kernels, samples blocked)",
        _ => "strategy: direct (register tile of filters × output rows × column vectors)",
    };

    /// <summary>
    /// The network the kernels, drivers and workspace are emitted from: each layer as it is computed. A
    /// DenseOverPatch convolution becomes a Dense layer with the same offsets, input and (1×1) output; the
    /// public surface (tensors, initialisation, summary) is emitted from the declared network.
    /// </summary>
    public static NetworkSpec ForKernels(NetworkSpec net)
    {
        if (!net.Layers.Any(l => Choose(l) == ConvStrategy.DenseOverPatch)) return net;
        return net with
        {
            Layers = net.Layers
                .Select(l => Choose(l) == ConvStrategy.DenseOverPatch ? l with { Kind = LayerKind.Dense, Stride = 1 } : l)
                .ToEquatableArray(),
        };
    }
}
