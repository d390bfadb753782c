using System;
using System.Collections.Generic;
using System.Linq;
using Unrolled.Tests.Harness;

namespace Unrolled.Tests.Generator;

/// <summary>
/// Random declarations for <see cref="FuzzTests"/>. Most start as a plausible network built layer by layer
/// against the running shape (so that many are valid, with odd sizes, every kind and option, Same and Valid
/// padding, huge strides); some are then mutated (edge values, layers inserted where they do not fit,
/// invalid names and enum values, removed layers), blown up to huge sizes, shrunk to nothing, or put on a
/// class the generator cannot extend.
/// </summary>
public static class FuzzGenerator
{
    /// <summary>Accepted networks are run: their work, tensors and workspace stay below these (a declaration the
    /// oracle accepts beyond them is drawn again).</summary>
    public const long MaxCost = 300_000, MaxTensor = 60_000, MaxWorkspace = 1 << 23;

    private static readonly int[] EdgeInts =
        { 0, -1, -3, int.MinValue, int.MinValue + 1, int.MaxValue, int.MaxValue - 1, 1 << 20, 100_000, 46_341, 1, 2, 7, 33 };

    private static readonly int[] HugeInts = { int.MaxValue, 1 << 30, 1 << 24, 1 << 20, 100_000, 46_341 };

    private static readonly double[] EdgeReals =
    {
        double.NaN, double.PositiveInfinity, double.NegativeInfinity, double.MaxValue, -double.MaxValue, 1e300, -1e300,
        3.5e38, 1e-300, -1e-300, double.Epsilon, 0, -0.0, 1, -1, 1.5, 0.99999999, 0.5, -0.1, 2,
    };

    private static readonly string[] OddNames = new[]
    {
        "", " ", "a.b", "a b", "tab\there", "x\u0001", ".", "conv1", "dense1", "bn1", "relu1", "softmax1", "hidden", "名前", "_", "weight",
        "<b>&amp;{0}", "zero\u200Bwidth", "\uD800", "a\"b", "a\\b", "*/", "line\u2028break", "\\u0041", "\\", "\"", "\"+x+\"",
        "a\\\"b", "\\\"); }", "// x", "/* x", "&lt;", "]]>", "\u202Eevil", "\uD83D\uDE00", "\uE000", "\uFEFF",
    };

    /// <summary>Class names: ordinary ones, names of the members the generated code declares, public or private
    /// (UNR0013), keywords, and names that could collide with what the generated code uses.</summary>
    private static readonly string[] ClassNames = new[]
    {
        "Model", "Unrolled", "System", "INetwork", "Optimizer", "Kernels", "Runtime", "名前", "_",
        "Forward", "Summary", "Parameters", "Gradients", "Buffers", "Counters", "Tensors", "InputSize", "OutputSize",
        "ParameterCount", "MaxDegreeOfParallelism", "ComputeGradients", "TrainStep",
        "Run", "Train", "Act", "Grad", "Workspace", "CheckBatch", "InferChunk", "ChunkCount", "ChunkRange", "EnsureWorkspaces",
        "EnsureTraining", "ActStride", "BatchNormStats", "WorkspaceSize", "_parameters", "s_tensors", "_x", "L0_Forward", "L12_Backward",
        "L100000_InputGradient_Convolve", "L", "L0", "Lx_Forward",
        "Vec512", "Vec128F", "Vector512", "Vector128", "Span", "Math", "@class", "@int", "@var", "@nameof", "@record", "@value", "@dynamic", "@global",
    };

    private static readonly string[] Namespaces =
    {
        "System", "Unrolled", "Runtime", "Tests.Unrolled", "@class", "Vec512", "A.Vec256F", "@var", "@nameof.@record", "Run", "Intrinsics",
        "Vector512", "System.Runtime.Intrinsics",
    };

    /// <summary>The declaration for one fuzz index: deterministic in <paramref name="rng"/>.</summary>
    public static FuzzDecl Next(Random rng)
    {
        for (int attempt = 0; ; attempt++)
        {
            FuzzDecl decl = Draw(rng);
            Expectation e = FuzzOracle.Expect(decl);
            if (!e.Accepted || e.Cost <= MaxCost && e.LargestTensor <= MaxTensor && e.Workspace <= MaxWorkspace || attempt >= 50) return decl;
        }
    }

    private static FuzzDecl Draw(Random rng)
    {
        double scenario = rng.NextDouble();
        // About a quarter end up accepted: each of those costs a second or so to compile, the rejected ones almost nothing.
        if (scenario < 0.10) return Plausible(rng, "valid");
        if (scenario < 0.55)
        {
            FuzzDecl decl = Plausible(rng, "mutated");
            for (int n = rng.Next(1, 4); n > 0; n--) decl = Mutate(rng, decl);
            return decl;
        }
        if (scenario < 0.70) return Huge(rng, Plausible(rng, "huge"));
        if (scenario < 0.82) return Shrinking(rng);
        return ClassVariant(rng, Plausible(rng, "class"));
    }

    private static T Pick<T>(Random rng, IReadOnlyList<T> items) => items[rng.Next(items.Count)];

    /// <summary>A small side length, now and then 1 or 2.</summary>
    private static int Side(Random rng) => rng.Next(6) == 0 ? rng.Next(1, 3) : rng.Next(3, 17);

    /// <summary>A network built against the running shape: plausible layers, small sizes, mostly valid.</summary>
    private static FuzzDecl Plausible(Random rng, string scenario)
    {
        int[] input = rng.NextDouble() < 0.15
            ? new[] { rng.Next(1, 25) }
            : new[] { rng.Next(1, 5), Side(rng), Side(rng) };
        int? loss = rng.Next(10) switch { < 5 => null, < 7 => 0, _ => 1 };
        var decl = new FuzzDecl { Scenario = scenario, Input = input, Loss = loss, Layers = Array.Empty<FuzzLayer>() };
        var layers = new List<FuzzLayer>();
        int wanted = rng.Next(1, 7);
        for (int i = 0; i < wanted; i++)
        {
            // A few tries for a layer that fits; the last try stays even if it does not.
            FuzzLayer layer = RandomLayer(rng, Current(decl, layers));
            for (int attempt = 0; attempt < 8 && !Fits(decl, layers, layer); attempt++)
                layer = RandomLayer(rng, Current(decl, layers));
            layers.Add(layer);
        }
        if ((loss ?? 0) == 0 && Current(decl, layers) is not { IsVector: true, C: >= 2 } && rng.Next(10) != 0)
        {
            layers.Add(Dense(rng, rng.Next(2, 11)));
            if (rng.Next(4) == 0) layers.Add(new FuzzLayer(LayerKind.Softmax));
        }
        if (rng.Next(8) == 0)
        {
            int named = rng.Next(layers.Count);
            layers[named] = layers[named] with { Name = rng.Next(2) == 0 ? $"layer{named}" : "features" };
        }
        return decl with { Layers = layers, NetworkPosition = rng.Next(12) == 0 ? rng.Next(layers.Count + 1) : 0 };
    }

    /// <summary>The shape after <paramref name="layers"/>, or null when they do not fit.</summary>
    private static Shape? Current(FuzzDecl decl, IReadOnlyList<FuzzLayer> layers)
    {
        // A trailing ReLU keeps the shape and makes an empty list a network; MSE takes any output.
        Expectation e = FuzzOracle.Expect(decl with { Layers = layers.Append(new FuzzLayer(LayerKind.ReLU)).ToList(), Loss = 1 });
        return e.Accepted ? new Shape((int)e.Output.C, (int)e.Output.H, (int)e.Output.W) : null;
    }

    private static bool Fits(FuzzDecl decl, IReadOnlyList<FuzzLayer> layers, FuzzLayer layer) =>
        FuzzOracle.Expect(decl with { Layers = layers.Append(layer).ToList(), Loss = 1 }).Accepted;

    private static int? RandomActivation(Random rng) => rng.Next(2) == 0 ? null : rng.Next(0, 5);

    private static bool? RandomBias(Random rng) => rng.Next(4) switch { 0 => true, 1 => false, _ => null };

    private static FuzzLayer Dense(Random rng, int units) =>
        new(LayerKind.Dense) { Ints = new[] { units }, Bias = RandomBias(rng), Activation = RandomActivation(rng) };

    /// <summary>A random layer of a kind that suits <paramref name="shape"/> (any kind when it is unknown),
    /// with options drawn near the sizes that fit it.</summary>
    private static FuzzLayer RandomLayer(Random rng, Shape? shape)
    {
        LayerKind kind = shape switch
        {
            null => (LayerKind)rng.Next(14),
            { IsVector: true } => Pick(rng, new[]
            {
                LayerKind.Dense, LayerKind.Dense, LayerKind.Dense, LayerKind.BatchNorm, LayerKind.Dropout, LayerKind.ReLU,
                LayerKind.LeakyReLU, LayerKind.Sigmoid, LayerKind.Tanh, LayerKind.Softmax, LayerKind.Flatten,
            }),
            _ => Pick(rng, new[]
            {
                LayerKind.Conv2D, LayerKind.Conv2D, LayerKind.Conv2D, LayerKind.Conv2D, LayerKind.MaxPool2D, LayerKind.MaxPool2D,
                LayerKind.AvgPool2D, LayerKind.AvgPool2D, LayerKind.GlobalAvgPool2D, LayerKind.Flatten, LayerKind.BatchNorm,
                LayerKind.Dropout, LayerKind.LocalResponseNorm, LayerKind.ReLU, LayerKind.LeakyReLU, LayerKind.Sigmoid,
                LayerKind.Tanh, LayerKind.Dense,
            }),
        };
        return RandomLayer(rng, kind, shape);
    }

    private static FuzzLayer RandomLayer(Random rng, LayerKind kind, Shape? shape)
    {
        int side = shape is { IsVector: false } s ? Math.Min(s.H, s.W) : 8;
        int? Stride(int typical) => rng.Next(10) switch
        {
            < 5 => null,
            < 9 => rng.Next(1, typical + 1),
            _ => Pick(rng, new[] { 7, 100, int.MaxValue }),
        };
        switch (kind)
        {
            case LayerKind.Conv2D:
            {
                int? padding = rng.Next(10) switch { < 4 => null, 4 => 0, 5 or 6 => rng.Next(1, 3), 7 => 3, _ => Padding.Same };
                int reach = padding is { } p and >= 0 ? side + 2 * p : side;
                int kh = rng.Next(1, Math.Clamp(reach, 1, 5) + 1);
                int[] ints = rng.Next(3) == 0
                    ? new[] { rng.Next(1, 7), kh, rng.Next(1, Math.Clamp(reach, 1, 5) + 1) }
                    : new[] { rng.Next(1, 7), kh };
                return new FuzzLayer(kind)
                {
                    Ints = ints, Stride = Stride(3), Padding = padding, PaddingByName = rng.Next(2) == 0,
                    Bias = RandomBias(rng), Activation = RandomActivation(rng),
                };
            }
            case LayerKind.MaxPool2D:
            case LayerKind.AvgPool2D:
            {
                int size = rng.Next(8) == 0 ? rng.Next(4, 6) : rng.Next(1, 4);
                int? padding = rng.Next(10) switch { < 6 => null, < 9 => rng.Next(0, size / 2 + 1), _ => Padding.Same };
                return new FuzzLayer(kind) { Ints = new[] { size }, Stride = Stride(3), Padding = padding, PaddingByName = rng.Next(2) == 0 };
            }
            case LayerKind.Dense:
                return Dense(rng, rng.Next(1, 13));
            case LayerKind.Dropout:
                return new FuzzLayer(kind) { Real = Pick(rng, new[] { 0, 0.1, 0.25, 0.5, 0.9, 0.99999999 }) };
            case LayerKind.LocalResponseNorm:
                return new FuzzLayer(kind)
                {
                    Ints = new[] { rng.Next(1, 6) },
                    Alpha = rng.Next(3) == 0 ? Math.Round(rng.NextDouble(), 3) : null,
                    Beta = rng.Next(3) == 0 ? Math.Round(0.25 + rng.NextDouble(), 3) : null,
                    K = rng.Next(3) == 0 ? Math.Round(0.5 + rng.NextDouble() * 2, 3) : null,
                };
            case LayerKind.LeakyReLU:
                return new FuzzLayer(kind) { Real = rng.Next(2) == 0 ? null : Pick(rng, new[] { 0.01, 0.2, 0, -0.5, 1.5 }) };
            default:
                return new FuzzLayer(kind);
        }
    }

    /// <summary>One random change that may well make the declaration invalid.</summary>
    private static FuzzDecl Mutate(Random rng, FuzzDecl decl)
    {
        var layers = decl.Layers.ToList();
        bool has = layers.Count > 0;
        int at = rng.Next(Math.Max(1, layers.Count));
        // Most changes need a layer of some kinds: take one of those when there is one.
        void Prefer(params LayerKind[] kinds)
        {
            var suitable = Enumerable.Range(0, layers.Count).Where(i => kinds.Contains(layers[i].Kind)).ToList();
            if (suitable.Count > 0) at = Pick(rng, suitable);
        }
        int change = rng.Next(14);
        switch (change)
        {
            case 0: Prefer(LayerKind.Conv2D, LayerKind.Dense, LayerKind.MaxPool2D, LayerKind.AvgPool2D, LayerKind.LocalResponseNorm); break;
            case 1 or 2 or 10: Prefer(LayerKind.Conv2D, LayerKind.MaxPool2D, LayerKind.AvgPool2D); break;
            case 6: Prefer(LayerKind.Conv2D, LayerKind.Dense); break;
        }
        FuzzLayer? layer = has ? layers[at] : null;
        switch (change)
        {
            case 0 when layer is { Ints.Length: > 0 }:
            {
                int[] ints = layer.Ints.ToArray();
                ints[rng.Next(ints.Length)] = Pick(rng, EdgeInts);
                layers[at] = layer with { Ints = ints };
                break;
            }
            case 1 when layer?.Kind is LayerKind.Conv2D or LayerKind.MaxPool2D or LayerKind.AvgPool2D:
                layers[at] = layer with { Stride = Pick(rng, EdgeInts) };
                break;
            case 2 when layer?.Kind is LayerKind.Conv2D or LayerKind.MaxPool2D or LayerKind.AvgPool2D:
                layers[at] = layer with
                {
                    Padding = layer.Kind != LayerKind.Conv2D && rng.Next(2) == 0
                        ? layer.Ints[0] / 2 + 1 // just over half the window
                        : Pick(rng, new[] { -1, -3, int.MinValue + 1, int.MaxValue, 100_000, Padding.Same, 1 << 27 }),
                };
                break;
            case 3:
                layers.Insert(rng.Next(layers.Count + 1), RandomLayer(rng, (LayerKind)rng.Next(14), null));
                break;
            case 4 when layer is not null:
                layers[at] = layer with { Name = Pick(rng, OddNames) };
                break;
            case 5 when layers.Count >= 2:
            {
                // The name of another layer, explicit or default.
                int other = rng.Next(layers.Count);
                int ordinal = layers.Take(other + 1).Count(l => l.Kind == layers[other].Kind);
                layers[at] = layer! with { Name = layers[other].Name ?? LayerSpec.Of(layers[other].Kind).DefaultPrefix + ordinal };
                break;
            }
            case 6 when layer?.Kind is LayerKind.Conv2D or LayerKind.Dense:
                layers[at] = layer with { Activation = Pick(rng, new[] { -1, 5, 9, int.MaxValue, int.MinValue }) };
                break;
            case 7:
            {
                var reals = layers.Select((l, i) => (l, i)).Where(p => p.l.Kind is LayerKind.Dropout or LayerKind.LeakyReLU or LayerKind.LocalResponseNorm).ToList();
                if (reals.Count == 0)
                {
                    layers.Insert(rng.Next(layers.Count + 1), Pick(rng, new[]
                    {
                        new FuzzLayer(LayerKind.Dropout) { Real = Pick(rng, EdgeReals) },
                        new FuzzLayer(LayerKind.LeakyReLU) { Real = Pick(rng, EdgeReals) },
                    }));
                    break;
                }
                var (target, index) = Pick(rng, reals);
                double value = Pick(rng, EdgeReals);
                layers[index] = target.Kind == LayerKind.LocalResponseNorm
                    ? rng.Next(3) switch { 0 => target with { Alpha = value }, 1 => target with { Beta = value }, _ => target with { K = value } }
                    : target with { Real = value };
                break;
            }
            case 8:
            {
                int[] input = decl.Input.ToArray();
                input[rng.Next(input.Length)] = Pick(rng, EdgeInts);
                return decl with { Input = input, Layers = layers };
            }
            case 9:
                return decl with { Loss = Pick(rng, new[] { 0, 1, 2, -1, int.MaxValue }), Layers = layers };
            case 10 when layer?.Kind == LayerKind.Conv2D && decl.Input.Length == 3:
                // A kernel larger than anything the input can become.
                layers[at] = layer with { Ints = new[] { layer.Ints[0], decl.Input[1] + 1 + rng.Next(3) }, Padding = null };
                break;
            case 11 when has:
                layers.RemoveAt(at);
                break;
            case 12:
                // Softmax anywhere: on an image it must be refused.
                layers.Insert(rng.Next(layers.Count + 1), new FuzzLayer(LayerKind.Softmax));
                break;
            default:
                layers.Insert(rng.Next(layers.Count + 1), RandomLayer(rng, null));
                break;
        }
        return decl with { Layers = layers };
    }

    /// <summary>A huge input, or a layer with huge sizes: never a crash, always a diagnostic.</summary>
    private static FuzzDecl Huge(Random rng, FuzzDecl decl)
    {
        var layers = decl.Layers.ToList();
        switch (rng.Next(6))
        {
            case 0:
                return decl with
                {
                    Input = Pick(rng, new[]
                    {
                        new[] { 3, 100_000, 100_000 }, new[] { int.MaxValue }, new[] { 1, int.MaxValue, int.MaxValue },
                        new[] { 1, 20_000, 20_000 }, new[] { 65_536, 65_536, 1 }, new[] { (1 << 28) + 1 }, new[] { int.MaxValue, 1, 1 },
                    }),
                };
            case 1:
                layers.Insert(0, new FuzzLayer(LayerKind.Conv2D) { Ints = new[] { Pick(rng, HugeInts), 1 } });
                break;
            case 2:
                layers.Insert(rng.Next(layers.Count + 1), new FuzzLayer(LayerKind.Dense) { Ints = new[] { Pick(rng, HugeInts) } });
                break;
            case 3:
                // With a stride of the same order, the output stays small: the padded input in the convolution's
                // stride-phase layout (its workspace) is what is too large.
                layers.Insert(0, new FuzzLayer(LayerKind.Conv2D)
                {
                    Ints = new[] { 2, 1 }, Padding = Pick(rng, new[] { int.MaxValue, 1 << 20, 100_000, 1 << 27 }),
                    Stride = rng.Next(2) == 0 ? null : Pick(rng, HugeInts),
                });
                break;
            case 4:
                layers.Insert(0, new FuzzLayer(LayerKind.Conv2D)
                {
                    Ints = new[] { 1, Pick(rng, HugeInts), Pick(rng, HugeInts) }, Padding = Padding.Same, PaddingByName = true,
                });
                break;
            default:
                return decl with { Input = new[] { 4, 100_000, 100_000 }, Layers = new[] { new FuzzLayer(LayerKind.GlobalAvgPool2D), new FuzzLayer(LayerKind.Dense) { Ints = new[] { 2 } } } };
        }
        return decl with { Layers = layers };
    }

    /// <summary>Pooling and convolutions until the image is gone (or nearly): the first window that no
    /// longer fits must be reported, naming that layer.</summary>
    private static FuzzDecl Shrinking(Random rng)
    {
        var layers = new List<FuzzLayer>();
        for (int n = rng.Next(3, 9); n > 0; n--)
        {
            layers.Add(rng.Next(3) switch
            {
                0 => new FuzzLayer(LayerKind.MaxPool2D) { Ints = new[] { 2 } },
                1 => new FuzzLayer(LayerKind.Conv2D) { Ints = new[] { rng.Next(1, 4), 3 }, Activation = RandomActivation(rng) },
                _ => new FuzzLayer(LayerKind.AvgPool2D) { Ints = new[] { 3 }, Stride = 2 },
            });
        }
        layers.Add(new FuzzLayer(LayerKind.Dense) { Ints = new[] { rng.Next(2, 5) } });
        return new FuzzDecl { Scenario = "shrinking", Input = new[] { rng.Next(1, 4), rng.Next(3, 24), rng.Next(3, 24) }, Layers = layers };
    }

    /// <summary>A plausible network on a class the generator must refuse (or handle): another form, another name or
    /// namespace, without [Network], or without layers.</summary>
    private static FuzzDecl ClassVariant(Random rng, FuzzDecl decl) => rng.Next(15) switch
    {
        0 => decl with { HasNetwork = false },
        1 => decl with { Layers = Array.Empty<FuzzLayer>() },
        2 or 3 => decl with { ClassName = Pick(rng, ClassNames), Form = rng.Next(3) == 0 ? ClassForm.NotPartial : ClassForm.Public },
        4 => decl with { Namespace = Pick(rng, Namespaces), ClassName = rng.Next(2) == 0 ? Pick(rng, ClassNames) : null },
        var n => decl with { Form = (ClassForm)(n - 4) }, // every form but Public
    };
}
