using System;
using System.Collections.Generic;
using System.Linq;
using Unrolled.Generator.Model;

namespace Unrolled.Generator;

/// <summary>
/// How a convolution lays out its input in the workspace: zero-padded and split into stride phases,
/// so that every kernel read is a contiguous vector load whatever the stride.
/// Element (c, row, col) of the padded input lives at c·Plane + (col % S)·Phase + row·PitchP + col / S.
/// PitchO (a multiple of 16) is the row pitch of a convolution's output computed in whole vectors and compacted after;
/// rows that a path can store exactly (whole vectors, or paired half-vector ends) are written at their width instead.
/// Sizes are computed in 64 bits: the parser rejects (UNR0016) a network whose workspace would not fit one array,
/// so the emitter only ever sees sizes that fit an int.
/// </summary>
internal sealed class ConvGeometry
{
    public ConvGeometry(LayerSpec l)
    {
        Hp = l.Input.H + l.PadTop + l.PadBottom;
        Wp = l.Input.W + l.PadLeft + l.PadRight;
        // A stride beyond the padded extent reads exactly what a stride equal to it reads: the output is one row (or
        // column) there, whose window starts at 0. So the layout uses at most that stride, and never more phases than
        // padded columns: its size does not grow with the declared stride.
        S = (int)Math.Min(l.Stride, Math.Max(Hp, Wp));
        Phases = Math.Min(S, Wp);
        PitchO = (int)RoundUp(l.Output.W, 16);
        PitchP = (int)RoundUp(Math.Max(PitchO + (l.KernelW - 1) / S, ((long)Wp + S - 1) / S), 4);
        // Saturating: the parser checks these sizes for declarations of any size (the padding alone may be 2^28).
        Phase = Saturating.Mul(Hp, PitchP);
        Plane = Saturating.Mul(Phases, Phase);
        PhaseSize = Saturating.Mul(l.Input.C, Plane);
        OutSize = Saturating.Mul(Saturating.Mul(l.Output.C, l.Output.H), PitchO);
    }

    /// <summary>The stride the layout is built for: the declared one, or the padded extent when that is smaller.</summary>
    public int S { get; }
    /// <summary>Stride phases stored per channel: min(S, Wp).</summary>
    public int Phases { get; }
    public int Hp { get; }
    public int Wp { get; }
    public int PitchO { get; }
    public int PitchP { get; }
    public long Phase { get; }
    public long Plane { get; }
    /// <summary>Floats of the padded, phase-split input.</summary>
    public long PhaseSize { get; }
    /// <summary>Floats of the output computed with row pitch PitchO (the compaction buffer's size).</summary>
    public long OutSize { get; }

    public static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;
    public static long RoundUp(long value, long multiple) => (value + multiple - 1) / multiple * multiple;
}

/// <summary>Size arithmetic that stops at <see cref="Max"/> (2^60, a multiple of 16) instead of overflowing.</summary>
internal static class Saturating
{
    public const long Max = 1L << 60;

    public static long Mul(long a, long b) => a == 0 || b == 0 ? 0 : a > Max / b ? Max : Math.Min(a * b, Max);

    public static long Add(long a, long b) => Math.Min(a + b, Max); // both ≤ Max: no overflow
}

/// <summary>One vector width the emitter writes a kernel for.</summary>
internal sealed class VecPath
{
    private VecPath(string suffix, string vec, int lanes, int budget, string condition)
    {
        Suffix = suffix; Vec = vec; Lanes = lanes; Budget = budget; Condition = condition;
    }

    public string Suffix { get; }
    /// <summary>The static vector class (Vector512 …), fully qualified: the generated file declares no using aliases,
    /// which a class or namespace of the user's named like them would shadow.</summary>
    public string Vec { get; }
    /// <summary>The vector type, fully qualified.</summary>
    public string T => Vec + "<float>";
    public int Lanes { get; }
    /// <summary>Accumulator registers a tile may hold.</summary>
    public int Budget { get; }
    /// <summary>The runtime test that selects this path; null for the portable fallback.</summary>
    public string Condition { get; }

    public string Fma(string a, string b, string c) => Suffix switch
    {
        "512" => $"global::System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd({a}, {b}, {c})",
        "256" => $"global::System.Runtime.Intrinsics.X86.Fma.MultiplyAdd({a}, {b}, {c})",
        _ => $"({a} * {b} + {c})",
    };

    /// <summary>Stores vector <paramref name="value"/> at pointer <paramref name="at"/>.</summary>
    public string Store(string value, string at) => $"{Vec}.Store({value}, {at});";

    /// <summary>The static vector class of half this width (GetLower's type): Vector256, Vector128, Vector64.</summary>
    public string Half => "global::System.Runtime.Intrinsics.Vector" + (Lanes * 16);

    /// <summary>The path of half this width (V512 → V256 → V128); V128 has none.</summary>
    public VecPath HalfPath => Lanes switch
    {
        16 => V256,
        8 => V128,
        _ => throw new InvalidOperationException("Vector128 has no half-width path here"),
    };

    public static readonly VecPath V512 = new("512", "global::System.Runtime.Intrinsics.Vector512", 16, 24, "global::Unrolled.Kernels.Use512");
    public static readonly VecPath V256 = new("256", "global::System.Runtime.Intrinsics.Vector256", 8, 12, "global::Unrolled.Kernels.Use256");
    public static readonly VecPath V128 = new("128", "global::System.Runtime.Intrinsics.Vector128", 4, 12, "true");
    public static readonly VecPath[] All = { V512, V256, V128 };
}

/// <summary>
/// The per-chunk workspace: one region per purpose, at constant offsets (multiples of 16 floats).
/// Conv phase buffers are per layer because their zero borders are written once, when allocated.
/// Computed in 64 bits for any list of layers, so that the parser can check each prefix of a network against
/// <see cref="MaxFloats"/> before the emitter relies on every offset fitting an int.
/// </summary>
internal sealed class WorkspacePlan
{
    /// <summary>The most floats one workspace (an AlignedBuffer: a .NET array, less 16 floats of alignment) can hold.
    /// Also the limit on the saved activations of one sample in training.</summary>
    public const long MaxFloats = 0x7FFFFFC7 - 16;

    public WorkspacePlan(NetworkSpec net) : this(net.Layers) { }

    public WorkspacePlan(IEnumerable<LayerSpec> layers)
    {
        long offset = 0;
        long Take(long size)
        {
            long at = offset;
            offset = Saturating.Add(offset, ConvGeometry.RoundUp(Math.Max(size, 1), 16));
            return at;
        }

        long maxAct = 1, maxOut = 1, maxPhase = 1;
        var list = layers.ToList();
        foreach (LayerSpec l in list)
        {
            maxAct = Math.Max(maxAct, l.Output.Size);
            ActivationFloatsPerSample = Saturating.Add(ActivationFloatsPerSample, ConvGeometry.RoundUp((long)l.Output.Size, 16));
            // A PatchGemm convolution reads its input through patches, never padded or phase-split (Strategy.cs).
            if (l.Kind == LayerKind.Conv2D && Strategy.Choose(l) != ConvStrategy.PatchGemm)
            {
                var specs = new List<LayerSpec> { l };
                if (l.Index > 0 && Strategy.InputGradientSpec(l) is { } t)
                {
                    specs.Add(t);
                    Transposed[l.Index] = t;
                    PackedOffset[l.Index] = PackedSize;
                    PackedSize += l.WeightCount;
                }
                foreach (LayerSpec spec in specs)
                {
                    var g = new ConvGeometry(spec);
                    Geometry[spec.Index] = g;
                    maxOut = Math.Max(maxOut, g.OutSize);
                    maxPhase = Math.Max(maxPhase, g.PhaseSize);
                }
            }
        }
        ActStride = (int)ConvGeometry.RoundUp(maxAct, 16);
        Block = (int)Math.Max(1, Math.Min(16, (1 << 22) / (long)ActStride));
        FirstDense = list.FindIndex(l => l.Kind == LayerKind.Dense);
        if (FirstDense < 0) FirstDense = list.Count;
        for (int i = 0; i + 1 < FirstDense; i++)
            if (Strategy.FusesPool(list[i], list[i + 1])) FusedPools.Add(i);
        GatherStride = FirstDense > 0 && FirstDense < list.Count ? (int)ConvGeometry.RoundUp(list[FirstDense - 1].Output.Size, 16) : 0;
        Gather = Take((long)Block * GatherStride);
        Ping = Take((long)Block * ActStride);
        Pong = Take((long)Block * ActStride);
        foreach (int index in Geometry.Keys.OrderBy(k => k))
            PhaseOffset[index] = Take(Geometry[index].PhaseSize);
        Tile = Take(maxOut);
        Patches = Take(list.Where(l => Strategy.Choose(l) == ConvStrategy.PatchGemm).Select(Strategy.PatchFloats).DefaultIfEmpty(0).Max());
        Grad = Take(maxOut);
        GradPhase = Take(maxPhase);
        Lrn = Take(maxAct);
        long maxPartials = 0;
        foreach (LayerSpec l in list)
            if (UsesVectorPartials(l)) maxPartials = Math.Max(maxPartials, PartialFloats(l));
        Partials = Take(maxPartials);
        Size = offset;
        LargestConvBuffer = Geometry.Values.Select(g => Math.Max(g.PhaseSize, g.OutSize)).DefaultIfEmpty(0).Max();
    }

    public Dictionary<int, ConvGeometry> Geometry { get; } = new();
    /// <summary>Convolutions that inference runs together with the 2×2/2 max pool after them (<see cref="Strategy.FusesPool"/>).</summary>
    public HashSet<int> FusedPools { get; } = new();
    /// <summary>Stride-1 convolutions whose input gradient runs as a convolution with packed, flipped weights.</summary>
    public Dictionary<int, LayerSpec> Transposed { get; } = new();
    /// <summary>Where each such layer's packed weights start in the network's packed-weight array.</summary>
    public Dictionary<int, int> PackedOffset { get; } = new();
    public int PackedSize { get; }
    public Dictionary<int, long> PhaseOffset { get; } = new();
    /// <summary>Samples inference takes through a layer together (so dense weights serve several samples per load).</summary>
    public int Block { get; }
    /// <summary>Floats between samples in the Ping and Pong buffers.</summary>
    public int ActStride { get; }
    public long Ping { get; }
    public long Pong { get; }
    /// <summary>Inference: the first Dense layer (the layer count when there is none). Layers before it run sample by
    /// sample; it and the layers after it run over a block of samples.</summary>
    public int FirstDense { get; }
    /// <summary>Inference: where the layer before the first Dense writes each sample of a block, and its row pitch.</summary>
    public long Gather { get; }
    public int GatherStride { get; }
    /// <summary>A PatchGemm convolution's patch matrix and pixel × filter result (its forward pass).</summary>
    public long Patches { get; }
    /// <summary>A conv output computed at pitch PitchO before it is compacted to the public layout.</summary>
    public long Tile { get; }
    /// <summary>A conv's output gradient at pitch PitchO, tails zero.</summary>
    public long Grad { get; }
    /// <summary>A conv's input gradient in the padded phase layout.</summary>
    public long GradPhase { get; }
    /// <summary>LRN's per-element scale, kept between the two halves of its backward pass.</summary>
    public long Lrn { get; }
    /// <summary>
    /// Vector partial sums of one convolution's weight gradient, kept across all samples of a chunk and
    /// reduced once at its end (zero between layers), instead of a horizontal sum per sample and kernel tap.
    /// </summary>
    public long Partials { get; }
    /// <summary>Floats of the whole workspace.</summary>
    public long Size { get; }
    /// <summary>The largest phase-split input or pitched output of a convolution (for messages).</summary>
    public long LargestConvBuffer { get; }
    /// <summary>Floats training saves per sample: every layer's output, each rounded up to 16.</summary>
    public long ActivationFloatsPerSample { get; }

    /// <summary>Floats of vector partials for a layer: one widest vector per weight.</summary>
    public static int PartialFloats(LayerSpec l) => l.WeightCount * 16;

    /// <summary>
    /// Convolutions whose weight gradient keeps vector partials across the chunk: those where the partials
    /// stay small enough for the L2 cache (at most 256 KB). Larger layers have larger outputs, so their
    /// horizontal sums are amortised over more multiply-adds anyway.
    /// </summary>
    public static bool UsesVectorPartials(LayerSpec l) => l.Kind == LayerKind.Conv2D && Strategy.Choose(l) != ConvStrategy.PatchGemm && (long)l.WeightCount * 16 <= 65536;
}
