using System;
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

    /// <summary>
    /// Few output columns (at most 8: half of a 512-bit vector's lanes or fewer would be useful in the direct
    /// kernel): the forward pass gathers each output pixel's C×Kh×Kw patch into a row and runs the Dense kernels
    /// over the Ho·Wo rows (lanes along the patch, several pixels per weight row loaded), then transposes the
    /// pixel × filter result into the public F × Ho × Wo layout. The backward pass keeps the direct kernels.
    /// </summary>
    PatchGemm,
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
    {
        if (l.Kind != LayerKind.Conv2D || l.Input.IsFlat) return ConvStrategy.Direct;
        if (l.KernelH == l.Input.H && l.KernelW == l.Input.W && l.PadTop + l.PadBottom + l.PadLeft + l.PadRight == 0)
            return ConvStrategy.DenseOverPatch;
        // Patches: worth their gather (1/F of the multiply-adds) and transpose (1/(C·Kh·Kw)) when the direct
        // kernel would leave half its lanes or more idle and the patch fills vectors (C·Kh·Kw ≥ 32).
        long patch = (long)l.Input.C * l.KernelH * l.KernelW;
        if (l.Output.W <= 8 && patch >= 32 && l.Output.C >= 8 && PatchFloats(l) <= (1 << 22))
            return ConvStrategy.PatchGemm;
        return ConvStrategy.Direct;
    }

    /// <summary>
    /// The input gradient of a stride-1 convolution is itself a convolution: of dz (F×Ho×Wo) with the kernel
    /// flipped and transposed (C×F×Kh×Kw), padded by K − 1 − p. This spec describes it, so the same
    /// register-tiled kernel serves both directions. Null when the padding exceeds K − 1 or the stride is not 1.
    /// </summary>
    public static LayerSpec? InputGradientSpec(LayerSpec l)
    {
        if (l.Kind != LayerKind.Conv2D || l.Stride != 1) return null;
        int pt = l.KernelH - 1 - l.PadTop, pb = l.KernelH - 1 - l.PadBottom, pl = l.KernelW - 1 - l.PadLeft, pr = l.KernelW - 1 - l.PadRight;
        if (pt < 0 || pb < 0 || pl < 0 || pr < 0) return null;
        return l with
        {
            Name = l.Name + " input gradient",
            Input = l.Output,
            Output = l.Input,
            PadTop = pt, PadBottom = pb, PadLeft = pl, PadRight = pr,
            HasBias = false,
            Activation = Act.None,
            Index = TransposedBase + l.Index,
        };
    }

    /// <summary>Method names of synthetic specs (input-gradient convolutions) start here.</summary>
    public const int TransposedBase = 100000;

    /// <summary>
    /// Whether inference runs this convolution and the layer after it, a 2×2/2 max pool that drops nothing, as one
    /// kernel: the tile takes the maximum of each 2×2 window in registers and stores only that. ReLU and LeakyReLU
    /// are applied before, as in the separate layers, so the result is the same bits.
    /// </summary>
    public static bool FusesPool(LayerSpec conv, LayerSpec? next) =>
        conv.Kind == LayerKind.Conv2D && Choose(conv) != ConvStrategy.PatchGemm && conv.Activation is Act.None or Act.ReLU or Act.LeakyReLU
        && next is { Kind: LayerKind.MaxPool2D, KernelH: 2, KernelW: 2, Stride: 2, PadTop: 0, PadBottom: 0, PadLeft: 0, PadRight: 0 }
        && conv.Output.H % 2 == 0 && conv.Output.W % 2 == 0
        && next.Output.H * 2 == conv.Output.H && next.Output.W * 2 == conv.Output.W;

    /// <summary>Row pitch of a PatchGemm layer's patch matrix: C·Kh·Kw rounded up to 16.</summary>
    public static int PatchPitch(LayerSpec l) => (l.Input.C * l.KernelH * l.KernelW + 15) / 16 * 16;

    /// <summary>Row pitch of a PatchGemm layer's pixel × filter matrices: F rounded up to 16.</summary>
    public static int FilterPitch(LayerSpec l) => (l.Output.C + 15) / 16 * 16;

    /// <summary>Floats the backward pass of a PatchGemm layer takes per sample: its patch rows, their gradients and
    /// the pixel × filter output gradient.</summary>
    private static long PatchGradFloatsPerSample(LayerSpec l)
        => (long)l.Output.H * l.Output.W * (2L * PatchPitch(l) + FilterPitch(l));

    /// <summary>Floats the patch matrices of a backward group may take (4 MB). A group as large as that lets the Dense
    /// kernels reuse each block of weights over many rows; larger ones bring no more reuse, only memory.</summary>
    private const long PatchGroupFloats = 1 << 20;

    /// <summary>Samples a PatchGemm layer's backward pass takes together: as many as fit in
    /// <see cref="PatchGroupFloats"/>, between 1 and 64.</summary>
    public static int PatchGroup(LayerSpec l) => (int)Math.Max(1, Math.Min(64, PatchGroupFloats / PatchGradFloatsPerSample(l)));

    /// <summary>Workspace floats of a PatchGemm layer: the larger of the forward pass's patch matrix (Ho·Wo rows)
    /// and pixel × filter result, and the backward pass's matrices for one group of samples.</summary>
    public static long PatchFloats(LayerSpec l)
        => Math.Max((long)l.Output.H * l.Output.W * (PatchPitch(l) + FilterPitch(l)), PatchGroup(l) * PatchGradFloatsPerSample(l));

    /// <summary>Method names of a PatchGemm layer's Dense kernel start here (L{PatchBase + index}_…).</summary>
    public const int PatchBase = 200000;

    /// <summary>The Dense layer a PatchGemm convolution runs its pixels through: In = C·Kh·Kw, U = F, same weights.</summary>
    public static LayerSpec PatchDense(LayerSpec l) => l with
    {
        Kind = LayerKind.Dense,
        Name = l.Name + " patches",
        Input = Shape.Flat(l.Input.C * l.KernelH * l.KernelW),
        Output = Shape.Flat(l.Output.C),
        Index = PatchBase + l.Index,
    };

    /// <summary>Method names of the Dense kernel a PatchGemm convolution's backward pass runs start here.</summary>
    public const int PatchGradBase = 300000;

    /// <summary>The Dense layer of a PatchGemm convolution's backward pass: <see cref="PatchDense"/> without the
    /// activation, whose derivative the convolution applies to its own output gradient first.</summary>
    public static LayerSpec PatchGradDense(LayerSpec l) => PatchDense(l) with
    {
        Name = l.Name + " patch gradients",
        Activation = Act.None,
        Index = PatchGradBase + l.Index,
    };

    /// <summary>The prefix of a layer's kernel methods, to which "_Forward" and the like are added: L{index} for a
    /// declared layer, and for the synthetic specs above L{index}_InputGradient, L{index}_Patches and
    /// L{index}_PatchGradients. <see cref="GeneratedNames.IsMember"/> knows the form, so no network class can be named like one.</summary>
    public static string KernelName(LayerSpec l) => l.Index switch
    {
        >= PatchGradBase => $"L{l.Index - PatchGradBase}_PatchGradients",
        >= PatchBase => $"L{l.Index - PatchBase}_Patches",
        >= TransposedBase => $"L{l.Index - TransposedBase}_InputGradient",
        _ => "L" + l.Index,
    };

    /// <summary>The comment the generated code carries before a convolution's kernels.</summary>
    public static string Describe(LayerSpec l) => Choose(l) switch
    {
        ConvStrategy.PatchGemm => $"strategy: patches × weights ({l.Output.W} output column(s) would fill {l.Output.W} of 16 lanes directly; each of the {l.Output.H * l.Output.W} pixels' {l.Input.C}×{l.KernelH}×{l.KernelW} patch is a row for the Dense kernels, {l.Output.C} filters; backward over {PatchGroup(l)} samples at a time, every pixel a row: dW += dZᵀ·A, dA = dZ·W, then col2im)",
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
