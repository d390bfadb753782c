using System;
using System.Collections.Generic;
using System.Linq;
using Unrolled.Tests.Harness;

namespace Unrolled.Tests.Generator;

/// <summary>
/// What a fuzzed declaration must produce, written from the contracts (LAYERS.md for shapes, the README's
/// diagnostics table for IDs) rather than from the parser: which attributes carry errors and which IDs
/// each may carry, which layers get the UNR0011 warning, and for an accepted network its sizes.
/// </summary>
public sealed class Expectation
{
    /// <summary>Target of class-level diagnostics: the class identifier.</summary>
    public const int ClassTarget = -2;
    /// <summary>Target of network-level diagnostics: the [Network] attribute.</summary>
    public const int NetworkTarget = -1;

    /// <summary>Per target (<see cref="ClassTarget"/>, <see cref="NetworkTarget"/> or a layer index), the
    /// problems found there. Each problem is the set of IDs that may report it (when one attribute breaks two
    /// rules at once, either may be reported first); every problem must be reported by at least one of them,
    /// and the target must carry no error outside their union.</summary>
    public Dictionary<int, List<SortedSet<string>>> Errors { get; } = new();

    /// <summary>Layers that must carry exactly one UNR0011 warning.</summary>
    public SortedSet<int> Warnings { get; } = new();

    /// <summary>Layers that may carry UNR0011 (the layer whose error stops shape inference may warn first).</summary>
    public SortedSet<int> OptionalWarnings { get; } = new();

    public bool Accepted => Errors.Count == 0;

    public long InputSize { get; set; }
    /// <summary>The output shape (a vector when H is 0), as far as shapes could be inferred.</summary>
    public (long C, long H, long W) Output { get; set; }
    public long OutputSize { get; set; }
    public long ParameterCount { get; set; }
    public bool CrossEntropy { get; set; }
    /// <summary>Multiply-adds (and comparable work) of one forward pass of one sample.</summary>
    public long Cost { get; set; }
    /// <summary>The largest per-sample tensor: the input, any layer's output, or the parameters.</summary>
    public long LargestTensor { get; set; }
    /// <summary>Floats of the generated code's per-thread workspace (see <see cref="FuzzOracle"/>).</summary>
    public long Workspace { get; set; }
    /// <summary>The state_dict keys of an accepted network, in order (LAYERS.md, "Names and weight files").</summary>
    public List<string> TensorNames { get; } = new();

    public void Add(int target, params string[] ids)
    {
        if (!Errors.TryGetValue(target, out var problems)) Errors[target] = problems = new List<SortedSet<string>>();
        problems.Add(new SortedSet<string>(ids));
    }

    public static string TargetName(int target) => target switch
    {
        ClassTarget => "the class name",
        NetworkTarget => "[Network]",
        _ => $"layer #{target}",
    };

    public override string ToString()
    {
        if (Accepted)
            return $"accepted (input {InputSize}, output {OutputSize}, {ParameterCount} parameters" +
                   (Warnings.Count > 0 ? $", UNR0011 on layers {string.Join(", ", Warnings)}" : "") + ")";
        return "rejected: " + string.Join("; ", Errors.OrderBy(e => e.Key).Select(e =>
            $"{TargetName(e.Key)}: " + string.Join(" and ", e.Value.Select(ids => string.Join("|", ids)))));
    }
}

/// <summary>Predicts a declaration's <see cref="Expectation"/>.</summary>
public static class FuzzOracle
{
    /// <summary>The generator's limit on every per-sample tensor and on the parameter count (UNR0016, 2^28:
    /// the number its messages quote).</summary>
    public const long MaxElements = 1L << 28;

    /// <summary>The most floats one of the generated code's own buffers may take (UNR0016): what one .NET array holds
    /// (Array.MaxLength), less the 16 floats the runtime's aligned buffer keeps for alignment.</summary>
    public const long MaxFloats = 0x7FFFFFC7 - 16;

    private const int Same = Padding.Same;

    /// <summary>The public members the README says the generator adds to a network class (and INetwork.Loss).</summary>
    public static readonly IReadOnlySet<string> GeneratedMembers = new HashSet<string>(StringComparer.Ordinal)
    {
        "InputSize", "OutputSize", "ParameterCount", "Summary", "Parameters", "Gradients", "Buffers", "Counters", "Tensors",
        "Forward", "ComputeGradients", "TrainStep", "MaxDegreeOfParallelism", "Loss",
    };

    /// <summary>Private members of the generated code that the fuzzer uses as class names (a class cannot be named
    /// like one of its members, so UNR0013); layer kernels are L{index}_…. GeneratorMemberNameTests checks the
    /// generator's full list against what it emits.</summary>
    public static readonly IReadOnlySet<string> PrivateMembers = new HashSet<string>(StringComparer.Ordinal)
    {
        "Run", "Train", "Act", "Grad", "Workspace", "CheckBatch", "InferChunk", "ChunkCount", "ChunkRange", "EnsureWorkspaces",
        "EnsureTraining", "ActStride", "BatchNormStats", "WorkspaceSize", "_parameters", "s_tensors", "_x",
    };

    /// <summary>Is <paramref name="name"/> (as declared, without '@') the name of a member of the generated code?</summary>
    public static bool IsGeneratedMember(string name) =>
        GeneratedMembers.Contains(name) || PrivateMembers.Contains(name) || System.Text.RegularExpressions.Regex.IsMatch(name, "^L[0-9]+_");

    /// <summary>A per-sample shape in 64 bits: a vector of <see cref="C"/> features when <see cref="H"/> is 0.</summary>
    private readonly record struct Dims(long C, long H, long W)
    {
        public bool IsVector => H == 0;
        public long Size => IsVector ? C : C * H * W;
        public static Dims Vector(long features) => new(features, 0, 0);
    }

    public static Expectation Expect(FuzzDecl decl)
    {
        var e = new Expectation();
        if (!decl.HasNetwork)
        {
            // The analyzer reports the first layer attribute; the generator never sees the class.
            if (decl.Layers.Count > 0) e.Add(0, "UNR0009");
            return e;
        }
        if (decl.Form == ClassForm.NotPartial) e.Add(Expectation.ClassTarget, "UNR0001");
        if (decl.Form is ClassForm.Static or ClassForm.Generic or ClassForm.Nested or ClassForm.Derived or ClassForm.Record
                or ClassForm.FileLocal or ClassForm.PrimaryConstructor
            || decl.ClassName is { } className && IsGeneratedMember(className))
            e.Add(Expectation.ClassTarget, "UNR0013");
        if (!e.Accepted) return e;

        if (decl.Input.Any(d => d <= 0))
        {
            e.Add(Expectation.NetworkTarget, "UNR0003");
            return e;
        }
        Dims input = decl.Input.Length == 1 ? Dims.Vector(decl.Input[0]) : new Dims(decl.Input[0], decl.Input[1], decl.Input[2]);
        if (input.Size > MaxElements)
        {
            e.Add(Expectation.NetworkTarget, "UNR0016");
            return e;
        }
        if (decl.Layers.Count == 0)
        {
            e.Add(Expectation.NetworkTarget, "UNR0002");
            return e;
        }

        // Names: every layer is checked, also after a shape error.
        var names = new HashSet<string>(StringComparer.Ordinal);
        var ordinals = new Dictionary<LayerKind, int>();
        for (int i = 0; i < decl.Layers.Count; i++)
        {
            FuzzLayer layer = decl.Layers[i];
            ordinals[layer.Kind] = ordinals.GetValueOrDefault(layer.Kind) + 1;
            string name = layer.Name ?? LayerSpec.Of(layer.Kind).DefaultPrefix + ordinals[layer.Kind];
            if (layer.Name is { } n && (n.Length == 0 || n.Contains('.') || n.Any(char.IsWhiteSpace) || n.Any(char.IsControl)))
                e.Add(i, "UNR0014");
            if (!names.Add(name)) e.Add(i, "UNR0010");
            string[] suffixes = layer.Kind switch
            {
                LayerKind.Conv2D or LayerKind.Dense => layer.Bias ?? true ? new[] { "weight", "bias" } : new[] { "weight" },
                LayerKind.BatchNorm => new[] { "weight", "bias", "running_mean", "running_var", "num_batches_tracked" },
                _ => Array.Empty<string>(),
            };
            e.TensorNames.AddRange(suffixes.Select(suffix => $"{name}.{suffix}"));
        }

        // Shapes, until the first layer that does not fit (later layers cannot be checked against an unknown shape).
        Dims shape = input;
        long parameters = 0, cost = 0, largest = input.Size;
        bool broken = false;
        var workspace = new Workspace();
        for (int i = 0; i < decl.Layers.Count; i++)
        {
            var problems = new SortedSet<string>();
            bool warns = false;
            Dims? output = Step(decl.Layers[i], i, shape, parameters, problems, ref warns, ref parameters, ref cost, workspace);
            if (output is { } o && problems.Count == 0 && (o.Size > MaxElements || parameters > MaxElements))
                problems.Add("UNR0016");
            else if (output is { } fitted && problems.Count == 0)
            {
                // The generated code's own buffers for the network so far must each fit one array.
                workspace.AddOutput(fitted.Size);
                if (workspace.Size > MaxFloats || workspace.Activations > MaxFloats) problems.Add("UNR0016");
            }
            if (problems.Count > 0)
            {
                e.Add(i, problems.ToArray());
                if (warns) e.OptionalWarnings.Add(i);
                broken = true;
                break;
            }
            if (warns) e.Warnings.Add(i);
            shape = output!.Value;
            largest = Math.Max(largest, shape.Size);
        }

        if (!broken)
        {
            int loss = decl.Loss ?? 0;
            if (loss is not (0 or 1)) e.Add(Expectation.NetworkTarget, "UNR0015");
            else if (loss == 0 && (!shape.IsVector || shape.C < 2)) e.Add(Expectation.NetworkTarget, "UNR0008");
            e.CrossEntropy = loss == 0;
        }
        e.InputSize = input.Size;
        e.Output = (shape.C, shape.H, shape.W);
        e.OutputSize = shape.Size;
        e.ParameterCount = parameters;
        e.Cost = cost;
        e.LargestTensor = Math.Max(largest, parameters);
        e.Workspace = workspace.Size;
        return e;
    }

    /// <summary>One layer on <paramref name="input"/>: its output shape, or null with the problems found (every
    /// rule it breaks that can be told from the shape). Adds its parameters and work to the running totals.</summary>
    private static Dims? Step(FuzzLayer layer, int index, Dims input, long parametersBefore, SortedSet<string> problems, ref bool warns,
        ref long parameters, ref long cost, Workspace workspace)
    {
        bool ActivationValid() => layer.Activation is null or (>= 0 and <= 4);
        switch (layer.Kind)
        {
            case LayerKind.Conv2D:
            {
                long filters = layer.Ints[0], kh = layer.Ints[1], kw = layer.Ints.Length > 2 ? layer.Ints[2] : kh;
                long stride = layer.Stride ?? 1;
                int pad = layer.Padding ?? 0;
                if (input.IsVector) problems.Add("UNR0015");
                if (filters <= 0 || kh <= 0 || kw <= 0 || stride <= 0) problems.Add("UNR0003");
                if (pad < 0 && pad != Same) problems.Add("UNR0012");
                if (!ActivationValid()) problems.Add("UNR0015");
                // The window is still looked at (and may warn) when only the filter count or the activation is wrong.
                bool windowDefined = !input.IsVector && kh > 0 && kw > 0 && stride > 0 && (pad >= 0 || pad == Same);
                var window = windowDefined ? Window(input, kh, kw, stride, pad, problems, ref warns) : null;
                if (problems.Count > 0 || window is not { } fitted) return null;
                var (ho, wo, pt, pb, pl, pr) = fitted;
                long weights = Mul(filters, input.C, kh, kw);
                if (filters * ho * wo > MaxElements || parametersBefore + weights + filters > MaxElements)
                {
                    problems.Add("UNR0016");
                    return null;
                }
                workspace.AddConv(input.C, input.H, input.W, filters, ho, wo, kh, kw, stride, pt, pb, pl, pr);
                // After the first layer, a stride-1 convolution whose padding is at most K − 1 gets its input gradient
                // as a second convolution: of the output gradient with the flipped kernel, padded by K − 1 − p.
                if (index > 0 && stride == 1 && Math.Max(pt, pb) <= kh - 1 && Math.Max(pl, pr) <= kw - 1)
                    workspace.AddConv(filters, ho, wo, input.C, input.H, input.W, kh, kw, 1, kh - 1 - pt, kh - 1 - pb, kw - 1 - pl, kw - 1 - pr);
                if (weights * 16 <= 65536) workspace.Partials = Math.Max(workspace.Partials, weights * 16);
                parameters += weights + (layer.Bias ?? true ? filters : 0);
                cost = Add(cost, Mul(filters, ho, wo, input.C, kh, kw));
                return new Dims(filters, ho, wo);
            }
            case LayerKind.Dense:
            {
                long units = layer.Ints[0];
                if (units <= 0) problems.Add("UNR0003");
                if (!ActivationValid()) problems.Add("UNR0015");
                if (problems.Count > 0) return null;
                if (parametersBefore + units * input.Size + units > MaxElements)
                {
                    problems.Add("UNR0016");
                    return null;
                }
                parameters += units * input.Size + (layer.Bias ?? true ? units : 0);
                cost = Add(cost, units * input.Size);
                return Dims.Vector(units);
            }
            case LayerKind.MaxPool2D:
            case LayerKind.AvgPool2D:
            {
                long size = layer.Ints[0], stride = layer.Stride ?? size;
                int pad = layer.Padding ?? 0;
                if (input.IsVector) problems.Add("UNR0015");
                if (size <= 0 || stride <= 0) problems.Add("UNR0003");
                if (pad < 0 && pad != Same) problems.Add("UNR0012");
                else if (pad != Same && size > 0 && pad > size / 2) problems.Add("UNR0004");
                if (problems.Count > 0) return null;
                if (Window(input, size, size, stride, pad, problems, ref warns) is not { } fitted) return null;
                var (ho, wo, _, _, _, _) = fitted;
                cost = Add(cost, Mul(input.C, ho, wo, size, size));
                return new Dims(input.C, ho, wo);
            }
            case LayerKind.GlobalAvgPool2D:
                if (input.IsVector) problems.Add("UNR0015");
                cost = Add(cost, input.Size);
                return input.IsVector ? null : Dims.Vector(input.C);
            case LayerKind.Flatten:
                cost = Add(cost, input.Size);
                return Dims.Vector(input.Size);
            case LayerKind.BatchNorm:
                parameters += 2 * input.C;
                cost = Add(cost, input.Size);
                return input;
            case LayerKind.Dropout:
                if (!(layer.Real >= 0 && layer.Real < 1)) problems.Add("UNR0007");
                cost = Add(cost, input.Size);
                return problems.Count > 0 ? null : input;
            case LayerKind.LocalResponseNorm:
            {
                // Across channels of an image (PyTorch refuses fewer than 3 dimensions). Every option is a float32
                // value of the generated code: it must fit one, and K must stay positive as one.
                if (input.IsVector) problems.Add("UNR0015");
                if (layer.Ints[0] <= 0) problems.Add("UNR0003");
                double alpha = layer.Alpha ?? 1e-4, beta = layer.Beta ?? 0.75, k = layer.K ?? 1;
                if (!FiniteFloat(alpha) || !FiniteFloat(beta) || !FiniteFloat(k) || alpha < 0 || !((float)k > 0)) problems.Add("UNR0015");
                cost = Add(cost, Mul(input.Size, Math.Max(1, layer.Ints[0])));
                return problems.Count > 0 ? null : input;
            }
            case LayerKind.LeakyReLU:
                if (!FiniteFloat(layer.Real ?? 0.01)) problems.Add("UNR0015");
                cost = Add(cost, input.Size);
                return problems.Count > 0 ? null : input;
            case LayerKind.Softmax:
                if (!input.IsVector) problems.Add("UNR0006");
                cost = Add(cost, input.Size);
                return problems.Count > 0 ? null : input;
            default: // ReLU, Sigmoid, Tanh
                cost = Add(cost, input.Size);
                return input;
        }
    }

    private static bool FiniteFloat(double value) => float.IsFinite((float)value);

    /// <summary>A product of non-negative factors, saturating at <see cref="long.MaxValue"/>.</summary>
    private static long Mul(params long[] factors)
    {
        long product = 1;
        foreach (long f in factors) product = f != 0 && product > long.MaxValue / f ? long.MaxValue : product * f;
        return product;
    }

    /// <summary>A sum of non-negative terms, saturating at <see cref="long.MaxValue"/>.</summary>
    private static long Add(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;

    /// <summary>A window of kh × kw over the input with the stride and padding (LAYERS.md, Conv2D row): the
    /// output height and width and the padding on each side, or null with UNR0005 (it does not fit) or UNR0016
    /// (too large).</summary>
    private static (long Height, long Width, long Top, long Bottom, long Left, long Right)? Window(Dims input, long kh, long kw, long stride, int pad, SortedSet<string> problems, ref bool warns)
    {
        if (pad == Same)
        {
            long ho = (input.H + stride - 1) / stride, wo = (input.W + stride - 1) / stride;
            long th = Math.Max((ho - 1) * stride + kh - input.H, 0), tw = Math.Max((wo - 1) * stride + kw - input.W, 0);
            if (th > MaxElements || tw > MaxElements)
            {
                problems.Add("UNR0016");
                return null;
            }
            return (ho, wo, th / 2, th - th / 2, tw / 2, tw - tw / 2);
        }
        if (pad > MaxElements)
        {
            problems.Add("UNR0016");
            return null;
        }
        long hp = input.H + 2L * pad, wp = input.W + 2L * pad;
        if (hp < kh || wp < kw)
        {
            problems.Add("UNR0005");
            return null;
        }
        warns = (hp - kh) % stride != 0 || (wp - kw) % stride != 0;
        long outH = (hp - kh) / stride + 1, outW = (wp - kw) / stride + 1;
        if (outH * outW > MaxElements)
        {
            problems.Add("UNR0016");
            return null;
        }
        return (outH, outW, pad, pad, pad, pad);
    }

    /// <summary>
    /// The generated code's per-thread workspace and per-sample training storage for a network so far, as Plan.cs
    /// lays them out: each convolution keeps its input zero-padded and split into stride phases (at most
    /// min(S, padded width) phases, S being the stride capped at the larger padded side, since a longer stride reads
    /// the same single window), each phase Hp rows of PitchP floats; its output is computed with rows rounded up to
    /// 16 floats. UNR0016 is due on the first layer at which either no longer fits one array.
    /// </summary>
    private sealed class Workspace
    {
        private long _maxActivation = 1, _maxOutput = 1, _maxPhase = 1, _phases;

        /// <summary>Floats of vector partials of the largest weight gradient that keeps them (at most 65536).</summary>
        public long Partials { get; set; }

        /// <summary>Floats of layer outputs training keeps per sample, each rounded up to 16.</summary>
        public long Activations { get; private set; }

        public void AddOutput(long size)
        {
            _maxActivation = Math.Max(_maxActivation, size);
            Activations = Add(Activations, RoundUp(size, 16));
        }

        public void AddConv(long c, long h, long w, long f, long ho, long wo, long kh, long kw, long stride,
            long top, long bottom, long left, long right)
        {
            long hp = h + top + bottom, wp = w + left + right;
            long s = Math.Min(stride, Math.Max(hp, wp));
            long pitchOut = RoundUp(wo, 16);
            long pitchIn = RoundUp(Math.Max(pitchOut + (kw - 1) / s, (wp + s - 1) / s), 4);
            long phaseSize = Mul(c, Math.Min(s, wp), hp, pitchIn);
            _phases = Add(_phases, Region(phaseSize));
            _maxPhase = Math.Max(_maxPhase, phaseSize);
            _maxOutput = Math.Max(_maxOutput, Mul(f, ho, pitchOut));
        }

        /// <summary>Inference's two activation buffers (a block of up to 16 samples), every phase buffer, the
        /// output tile and gradient, the input gradient, LRN's scale and the vector partials.</summary>
        public long Size
        {
            get
            {
                long stride = RoundUp(_maxActivation, 16);
                long block = Math.Max(1, Math.Min(16, (1 << 22) / stride));
                long ping = Region(block * stride);
                return new[] { ping, ping, _phases, Region(_maxOutput), Region(_maxOutput), Region(_maxPhase), Region(_maxActivation), Region(Partials) }
                    .Aggregate(0L, Add);
            }
        }

        private static long Region(long floats) => RoundUp(Math.Max(floats, 1), 16);

        private static long RoundUp(long value, long multiple) => value >= long.MaxValue - multiple ? long.MaxValue : (value + multiple - 1) / multiple * multiple;
    }
}
