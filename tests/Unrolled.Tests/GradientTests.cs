using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using Unrolled.Tests.Harness;
using Unrolled.Tests.Reference;
using Xunit;

namespace Unrolled.Tests;

/// <summary>
/// The naive reference's analytic backward against central finite differences of its own double-precision
/// forward. This validates the reference itself, independently of the generator.
/// </summary>
public class ReferenceGradientTests
{
    /// <summary>Analytic against finite differences, by the metric of <see cref="Parity"/> (floor 1e-3).</summary>
    private const double Tolerance = 1e-6;

    public static IEnumerable<object[]> Cases() =>
        GradientCases.All(forGenerated: false).Select(c => new object[] { c.Kind, c.Loss, c.Variant });

    [Theory]
    [MemberData(nameof(Cases))]
    public void AnalyticBackwardMatchesFiniteDifferences(LayerKind kind, Loss loss, int variant)
    {
        var decl = GradientCases.Build(kind, loss, variant, forGenerated: false).Decl;
        var reference = new NaiveNetwork(decl);
        var rng = new Random(variant + 17);
        var parameters = reference.RandomParameters(rng);
        var buffers = reference.RandomBuffers(rng);
        int batch = 3;
        var input = Parity.RandomInput(rng, batch * reference.InputSize);
        var targets = loss == Loss.CrossEntropy
            ? Targets.Of(Enumerable.Range(0, batch).Select(_ => rng.Next(reference.OutputSize)).ToArray())
            : Targets.Of(Parity.RandomInput(rng, batch * reference.OutputSize));
        var masks = reference.RandomDropoutMasks(batch, rng);

        var analytic = reference.Backward(parameters, buffers, input, targets, masks);
        var numeric = reference.FiniteDifferenceGradient(parameters, buffers, input, targets, masks);

        Assert.Equal(reference.Loss(parameters, buffers, input, targets, masks), analytic.Loss, 12);
        double error = Parity.Error(analytic.Gradients, numeric, Parity.GradientFloor, out int worst);
        Assert.True(error <= Tolerance,
            $"{decl.Describe()}\nerror {error:g3} at {Parity.Locate(reference, TensorKind.Parameter, worst)}: " +
            $"analytic {analytic.Gradients[worst]:g12}, numeric {numeric[worst]:g12}");
    }

    [Fact]
    public void DropoutMaskScalesKeptValues()
    {
        var decl = new NetDecl(Shape.Vector(4), Loss.MeanSquaredError, new[] { LayerSpec.Dropout(0.5) });
        var reference = new NaiveNetwork(decl);
        var masks = new Dictionary<int, bool[]> { [0] = new[] { true, false, true, false } };
        var output = reference.Forward(Array.Empty<double>(), Array.Empty<double>(), new[] { 1.0, 2, 3, 4 }, training: true, masks);
        Assert.Equal(new[] { 2.0, 0, 6, 0 }, output);
        Assert.Equal(new[] { 1.0, 2, 3, 4 }, reference.Forward(Array.Empty<double>(), Array.Empty<double>(), new[] { 1.0, 2, 3, 4 }));
    }

    [Fact]
    public void BatchNormTrainingUpdatesRunningStatisticsWithUnbiasedVariance()
    {
        var decl = new NetDecl(Shape.Vector(1), Loss.MeanSquaredError, new[] { LayerSpec.Of(LayerKind.BatchNorm) });
        var reference = new NaiveNetwork(decl);
        var result = reference.Backward(new[] { 1.0, 0.0 }, new[] { 0.0, 1.0 }, new[] { 1.0, 3.0 }, Targets.Of(new[] { 0.0, 0.0 }));
        // batch mean 2, biased variance 1, unbiased 2: running_mean = 0.1·2, running_var = 0.9·1 + 0.1·2.
        Assert.Equal(0.2, result.UpdatedBuffers[0], 12);
        Assert.Equal(1.1, result.UpdatedBuffers[1], 12);
    }

    [Fact]
    public void CrossEntropyRejectsLabelsOutOfRange()
    {
        var decl = new NetDecl(Shape.Vector(3), new[] { LayerSpec.Dense(2) });
        var reference = new NaiveNetwork(decl);
        var p = reference.RandomParameters(new Random(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => reference.Backward(p, Array.Empty<double>(), new[] { 1.0, 2, 3 }, Targets.Of(new[] { 2 })));
    }
}

/// <summary>
/// Small hand-worked cases that pin the reference's forward semantics to LAYERS.md (the finite-difference
/// tests above only show that its backward agrees with its own forward). The expected values were worked
/// by hand and agree with PyTorch.
/// </summary>
public class ReferenceSemanticsTests
{
    private static double[] Forward(NetDecl decl, double[] parameters, double[] input, double[]? buffers = null) =>
        new NaiveNetwork(decl).Forward(parameters, buffers ?? Array.Empty<double>(), input);

    [Fact]
    public void ConvolutionIsCrossCorrelation()
    {
        // The kernel's top-left weight multiplies each window's top-left cell: no flip.
        var decl = new NetDecl(new Shape(1, 3, 3), new[] { LayerSpec.Conv(1, 2, bias: false) });
        Assert.Equal(new[] { 1.0, 2, 4, 5 }, Forward(decl, new[] { 1.0, 0, 0, 0 }, new[] { 1.0, 2, 3, 4, 5, 6, 7, 8, 9 }));
    }

    [Fact]
    public void SamePaddingPutsTheExtraCellAfter()
    {
        // Width 4, kernel 2, stride 1: one cell of padding in all, on the right.
        var decl = new NetDecl(new Shape(1, 1, 4), new[] { LayerSpec.Conv(1, (1, 2), padding: Padding.Same, bias: false) });
        Assert.Equal(new[] { 21.0, 32, 43, 4 }, Forward(decl, new[] { 1.0, 10 }, new[] { 1.0, 2, 3, 4 }));
    }

    [Fact]
    public void AveragePoolingDivisors()
    {
        var image = new[] { 1.0, 2, 3, 4, 5, 6, 7, 8, 9 };
        // Same (Keras): divide by the real cells of each window.
        var same = new NetDecl(new Shape(1, 3, 3), new[] { LayerSpec.AvgPool(2, padding: Padding.Same) });
        Assert.Equal(new[] { 3.0, 4.5, 7.5, 9 }, Forward(same, Array.Empty<double>(), image));
        // Integer padding (PyTorch count_include_pad): padded zeros count.
        var padded = new NetDecl(new Shape(1, 2, 2), new[] { LayerSpec.AvgPool(2, padding: 1) });
        Assert.Equal(new[] { 0.25, 0.5, 0.75, 1 }, Forward(padded, Array.Empty<double>(), new[] { 1.0, 2, 3, 4 }));
    }

    [Fact]
    public void LocalResponseNormWindowRunsFromCMinusHalfTheSize()
    {
        // n = 2: channel c sums the squares of channels c − 1 and c; b = a / (1 + ½·Σa²).
        var decl = new NetDecl(new Shape(3, 1, 1), new[] { LayerSpec.Lrn(2, alpha: 1, beta: 1, k: 1) });
        var output = Forward(decl, Array.Empty<double>(), new[] { 1.0, 2, 3 });
        Assert.Equal(2.0 / 3, output[0], 12);
        Assert.Equal(4.0 / 7, output[1], 12);
        Assert.Equal(0.4, output[2], 12);
    }

    [Fact]
    public void BatchNormInferenceUsesRunningStatistics()
    {
        var decl = new NetDecl(Shape.Vector(1), new[] { LayerSpec.Of(LayerKind.BatchNorm) });
        // γ = 2, β = 1, running mean 3, running variance 4 − ε: (5 − 3) / 2 · 2 + 1 = 3.
        var output = Forward(decl, new[] { 2.0, 1 }, new[] { 5.0 }, new[] { 3.0, 4 - 1e-5 });
        Assert.Equal(3.0, output[0], 12);
    }

    [Fact]
    public void CrossEntropyAfterSoftmaxIsTakenOnTheLogits()
    {
        // Logits 0 and ln 3 give probabilities ¼ and ¾; the label 1 costs −ln ¾ whether or not Softmax is declared.
        var weights = new[] { 0.0, Math.Log(3) }; // dense1.weight [2, 1] on the input 1, no bias
        foreach (var layers in new[] { new[] { LayerSpec.Dense(2, bias: false) },
                                       new[] { LayerSpec.Dense(2, bias: false), LayerSpec.Of(LayerKind.Softmax) } })
        {
            var reference = new NaiveNetwork(new NetDecl(Shape.Vector(1), layers));
            Assert.Equal(-Math.Log(0.75), reference.Loss(weights, Array.Empty<double>(), new[] { 1.0 }, Targets.Of(new[] { 1 })), 12);
        }
    }
}

/// <summary>
/// The generated networks' <see cref="INetwork.ComputeGradients(ReadOnlySpan{float}, ReadOnlySpan{int})"/>
/// against the reference's analytic backward (itself checked against finite differences above).
/// All cases are compiled together once.
/// </summary>
public class GeneratedGradientTests
{
    private static readonly IReadOnlyList<GradientCase> AllCases = GradientCases.All(forGenerated: true).ToList();
    private static readonly Lazy<CompiledBatch> Compiled = new(() => CompiledBatch.Compile(AllCases.Select(c => c.Decl).ToList()));

    public static IEnumerable<object[]> Cases() => ReferenceGradientTests.Cases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void ComputeGradientsMatchesReference(LayerKind kind, Loss loss, int variant)
    {
        int index = AllCases.ToList().FindIndex(c => c.Kind == kind && c.Loss == loss && c.Variant == variant);
        var decl = AllCases[index].Decl;
        var reference = new NaiveNetwork(decl);
        var failures = new List<string>();
        foreach (int batch in new[] { 1, 2, 3 })
        {
            // Batch norm over a single value per channel is undefined in training (PyTorch refuses it).
            if (batch == 1 && kind == LayerKind.BatchNorm && decl.Input.IsVector) continue;
            var problem = Parity.GradientMismatch(Compiled.Value.Create(index), reference, batch, seed: 31 * variant + batch);
            if (problem != null) failures.Add(problem);
        }
        Assert.True(failures.Count == 0, $"{decl.Describe()}\n" + string.Join("\n", failures));
    }

    public const int PerChunk = 40;
    private static readonly ConcurrentDictionary<int, Lazy<CompiledBatch>> CompiledChunks = new();

    /// <summary>Random whole declarations with dropout p = 0, 40 per chunk, compiled once per chunk.</summary>
    public static CompiledBatch CompiledChunk(int chunk) => CompiledChunks.GetOrAdd(chunk, c => new Lazy<CompiledBatch>(() =>
    {
        var rng = new Random(7_000 + c);
        var options = new RandomDeclOptions { DropoutProbabilityZero = true, MaxFilters = 6 };
        return CompiledBatch.Compile(Enumerable.Range(0, PerChunk).Select(_ => NetDecl.Random(rng, options)).ToList());
    })).Value;

    /// <summary>Two training steps of every network of a chunk at batch 1 (without batch norm) and 3 and 8.</summary>
    public static IReadOnlyList<string> CheckChunk(CompiledBatch compiled) => compiled.CheckAll((network, reference, i) =>
    {
        bool hasBatchNorm = reference.Decl.Layers.Any(l => l.Kind == LayerKind.BatchNorm);
        var problems = new[] { hasBatchNorm ? null : Parity.GradientMismatch(network, reference, 1, seed: i),
                               Parity.GradientMismatch(network, reference, 3, seed: i + 1000),
                               Parity.GradientMismatch(network, reference, 8, seed: i + 2000) }
            .Where(p => p != null).ToList();
        return problems.Count == 0 ? null : string.Join("\n    ", problems);
    });

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RandomDeclarationsMatchReference(int chunk)
    {
        var compiled = CompiledChunk(chunk);
        var failures = CheckChunk(compiled);
        Assert.True(failures.Count == 0, CompiledBatch.Report("random declarations", compiled.Decls.Count, failures));
    }

    /// <summary>ReLU's gradient at exactly 0 is 0: a dense row of zero weights and zero bias gives a
    /// pre-activation of exactly 0, and that row must receive no gradient.</summary>
    [Fact]
    public void ReluGradientAtZeroIsZero()
    {
        var decl = new NetDecl(Shape.Vector(3), new[] { LayerSpec.Dense(2, activation: Activation.ReLU), LayerSpec.Dense(2) });
        var reference = new NaiveNetwork(decl);
        var parameters = Parity.RoundToFloat(reference.RandomParameters(new Random(5)));
        for (int i = 0; i < 3; i++) parameters[i] = 0; // dense1.weight row 0
        parameters[6] = 0;                             // dense1.bias[0]
        var network = CompiledBatch.Compile(new[] { decl }).Create(0);
        var problem = Parity.GradientMismatch(network, reference, parameters, Array.Empty<double>(),
            new[] { 0.5, -0.25, 1 }, Targets.Of(new[] { 1 }));
        Assert.Null(problem);
        Assert.Equal(new[] { 0f, 0f, 0f }, network.Gradients[..3].ToArray());
        Assert.Equal(0f, network.Gradients[6]);
    }

    /// <summary>Max pooling routes the gradient to the first maximum in row-major window order. A 1×1
    /// convolution with both weights 1 turns the channel pairs (1, 0) and (0, 1) into equal values 1, and which
    /// of the two wins shows in which weight gets the gradient.</summary>
    [Fact]
    public void MaxPoolTiesGoToTheFirstMaximum()
    {
        var decl = new NetDecl(new Shape(2, 2, 2), Loss.MeanSquaredError,
            new[] { LayerSpec.Conv(1, 1, bias: false), LayerSpec.MaxPool(2) });
        var reference = new NaiveNetwork(decl);
        // channel 0: [[0, 1], [0, 0]]; channel 1: [[1, 0], [0, 0]] → conv output [[1, 1], [0, 0]].
        var input = new[] { 0.0, 1, 0, 0, 1, 0, 0, 0 };
        var compiled = CompiledBatch.Compile(new[] { decl });
        var network = compiled.Create(0);
        var problem = Parity.GradientMismatch(network, reference, new[] { 1.0, 1.0 }, Array.Empty<double>(), input, Targets.Of(new[] { 0.0 }));
        Assert.Null(problem);
        // The first maximum is the top-left cell, fed by channel 1, so only the second weight has a gradient.
        Assert.Equal(0f, network.Gradients[0]);
        Assert.Equal(2f, network.Gradients[1]);
    }

    [Fact]
    public void LabelOutOfRangeThrows()
    {
        var decl = new NetDecl(Shape.Vector(3), new[] { LayerSpec.Dense(4), LayerSpec.Of(LayerKind.Softmax) });
        var network = CompiledBatch.Compile(new[] { decl }).Create(0);
        var input = new float[6];
        Assert.Throws<ArgumentOutOfRangeException>(() => network.ComputeGradients(input, new[] { 0, 4 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => network.ComputeGradients(input, new[] { -1, 0 }));
    }
}

/// <summary>Training steps of the benchmark networks against the reference. KerasBaseline's dropout masks are
/// internal to the generated code, so it is checked as declared with Dropout(0) instead.</summary>
public class BenchmarkGradientTests
{
    [Theory]
    [InlineData("LeNet5", 17)]
    [InlineData("SimpleConvNet", 17)]
    [InlineData("CifarVgg", 2)]
    public void ComputeGradientsMatchesReference(string name, int batch)
    {
        var (decl, create) = Benchmarks.All[name];
        var problem = Parity.GradientMismatch(create(0), new NaiveNetwork(decl), batch, seed: 3);
        Assert.True(problem == null, $"{name}: {problem}");
    }

    [Fact]
    public void KerasBaselineWithoutDropoutMatchesReference()
    {
        var decl = new NetDecl(Benchmarks.KerasBaseline.Input, Benchmarks.KerasBaseline.Layers
            .Select(l => l.Kind == LayerKind.Dropout ? LayerSpec.Dropout(0) : l));
        var network = CompiledBatch.Compile(new[] { decl }).Create(0);
        var problem = Parity.GradientMismatch(network, new NaiveNetwork(decl), batch: 6, seed: 4);
        Assert.True(problem == null, problem);
    }
}

/// <summary>Dropout in training, seen through the gradient of a dense layer behind it: with every input 1,
/// weights w and MSE against 0, y = Σ wᵢ·mᵢ/(1 − p) and d loss/d wᵢ = 2y·mᵢ/(1 − p), so the gradient shows the
/// mask and its scale.</summary>
public class DropoutTrainingTests
{
    private const int Features = 400;
    private const double P = 0.25;
    private const float Weight = 0.01f;

    private static readonly Lazy<CompiledBatch> Compiled = new(() => CompiledBatch.Compile(new[]
    {
        new NetDecl(Shape.Vector(Features), Loss.MeanSquaredError, new[] { LayerSpec.Dropout(P), LayerSpec.Dense(1, bias: false) }),
    }));

    /// <summary>One training step; returns the mask the step used (which gradients are non-zero).</summary>
    private static bool[] Step(INetwork network)
    {
        network.Parameters.Fill(Weight);
        var input = Enumerable.Repeat(1f, Features).ToArray();
        float loss = network.ComputeGradients(input, new[] { 0f });
        var gradients = network.Gradients.ToArray();
        var kept = gradients.Select(g => g != 0).ToArray();
        int keptCount = kept.Count(k => k);
        double y = Weight * keptCount / (1 - P);
        Assert.Equal(y * y, loss, 4);
        Assert.All(gradients.Where(g => g != 0), g => Assert.Equal(2 * y / (1 - P), g, 4));
        return kept;
    }

    [Fact]
    public void KeepsAboutOneMinusPAndScalesTheKeptValues()
    {
        var kept = Step(Compiled.Value.Create(0, seed: 5));
        // 400 draws with keep probability 0.75: 300 ± 5 standard deviations (8.7).
        Assert.InRange(kept.Count(k => k), 257, 343);
    }

    [Fact]
    public void MasksAreDeterministicForASeedAndChangeFromStepToStep()
    {
        var first = Compiled.Value.Create(0, seed: 5);
        var again = Compiled.Value.Create(0, seed: 5);
        var other = Compiled.Value.Create(0, seed: 6);
        var mask = Step(first);
        Assert.Equal(mask, Step(again));
        Assert.NotEqual(mask, Step(other));
        Assert.NotEqual(mask, Step(first));
    }
}
