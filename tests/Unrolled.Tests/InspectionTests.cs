using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading.Tasks;
using Unrolled.Tests.Harness;
using Unrolled.Tests.Reference;
using Xunit;
using Xunit.Abstractions;

namespace Unrolled.Tests;

/// <summary>
/// <see cref="NetworkInspection"/>: the interpreter's last layer against the generated Forward, every
/// intermediate output against the generated Forward of the truncated network, input gradients against central
/// finite differences of the double-precision reference, saliency, Grad-CAM, concurrency and bad arguments.
/// </summary>
public class InspectionTests
{
    private readonly ITestOutputHelper _output;

    public InspectionTests(ITestOutputHelper output) => _output = output;

    private static LayerSpec Of(LayerKind kind) => LayerSpec.Of(kind);

    private const int Same = Unrolled.Padding.Same;

    /// <summary>The networks under test; between them every layer kind and every padding and divisor rule.</summary>
    private static readonly NetDecl[] Networks =
    {
        // 0: LeNet5.
        new(new Shape(1, 28, 28), new[]
        {
            LayerSpec.Conv(6, 5, padding: 2, activation: Activation.ReLU), LayerSpec.MaxPool(2),
            LayerSpec.Conv(16, 5, activation: Activation.ReLU), LayerSpec.MaxPool(2),
            LayerSpec.Dense(120, activation: Activation.ReLU), LayerSpec.Dense(84, activation: Activation.ReLU), LayerSpec.Dense(10),
        }),
        // 1: strided padded conv, Same conv with a 3×2 kernel, overlapping padded max pool, padded average pool
        // (count_include_pad), Flatten, fused LeakyReLU, Softmax. Smooth activations for the finite differences.
        new(new Shape(3, 11, 9), new[]
        {
            LayerSpec.Conv(4, 3, stride: 2, padding: 1, activation: Activation.Tanh),
            LayerSpec.Conv(5, (3, 2), padding: Same, activation: Activation.Sigmoid),
            LayerSpec.MaxPool(3, stride: 2, padding: 1),
            LayerSpec.AvgPool(3, stride: 1, padding: 1),
            Of(LayerKind.Flatten),
            LayerSpec.Dense(6, activation: Activation.LeakyReLU),
            Of(LayerKind.Softmax),
        }),
        // 2: BatchNorm2d with running statistics, LeakyReLU layer, LRN with a strong α, Same average pool (real-cell
        // divisor), Same strided max pool, Dropout, Tanh, GlobalAvgPool, BatchNorm1d, Sigmoid.
        new(new Shape(4, 9, 9), new[]
        {
            LayerSpec.Conv(6, 3, padding: Same, bias: false),
            Of(LayerKind.BatchNorm),
            LayerSpec.LeakyReLU(0.2),
            LayerSpec.Lrn(3, alpha: 0.5, beta: 0.75, k: 1.5),
            LayerSpec.AvgPool(3, stride: 2, padding: Same),
            LayerSpec.MaxPool(2, stride: 2, padding: Same),
            LayerSpec.Dropout(0.3),
            Of(LayerKind.Tanh),
            LayerSpec.Conv(7, 1, activation: Activation.Sigmoid),
            Of(LayerKind.GlobalAvgPool2D),
            LayerSpec.Dense(5),
            Of(LayerKind.BatchNorm),
            Of(LayerKind.Sigmoid),
        }),
        // 3: a vector network: fused sigmoid, BatchNorm1d, Dropout, ReLU, fused tanh, Softmax; an explicit name.
        new(Shape.Vector(7), new[]
        {
            LayerSpec.Dense(9, activation: Activation.Sigmoid) with { Name = "hidden" },
            Of(LayerKind.BatchNorm), LayerSpec.Dropout(0.5), Of(LayerKind.ReLU),
            LayerSpec.Dense(4, activation: Activation.Tanh), Of(LayerKind.Softmax),
        }),
        // 4: LRN with an even window and a strong α after a strided, padded 2×2-kernel conv; an overlapping padded
        // max pool; a valid average pool; Dense without bias straight on the image (implicit flatten).
        new(new Shape(2, 8, 8), new[]
        {
            LayerSpec.Conv(5, 2, stride: 2, padding: 1),
            LayerSpec.Lrn(4, alpha: 1.0, beta: 0.6, k: 1.0),
            LayerSpec.MaxPool(2, stride: 1, padding: 1),
            LayerSpec.AvgPool(2),
            LayerSpec.Dense(3, bias: false),
        }),
    };

    /// <summary>Every proper prefix of networks 1–4, declared with MSE (their output may be an image).</summary>
    private static readonly (int Network, int Layers)[] Prefixes =
        Enumerable.Range(1, Networks.Length - 1)
            .SelectMany(n => Enumerable.Range(1, Networks[n].Layers.Count - 1).Select(k => (n, k)))
            .ToArray();

    private static readonly Lazy<CompiledBatch> Compiled = new(() => CompiledBatch.Compile(
        Networks.Concat(Prefixes.Select(p => new NetDecl(Networks[p.Network].Input, Loss.MeanSquaredError, Networks[p.Network].Layers.Take(p.Layers))))
            .Concat(TinyNetworks)
            .ToList()));

    /// <summary>Hand-checked cases: max pool ties and padding, average pool divisors.</summary>
    private static readonly NetDecl[] TinyNetworks =
    {
        new(new Shape(1, 2, 2), Loss.MeanSquaredError, new[] { LayerSpec.MaxPool(2, stride: 1, padding: 1) }),
        new(new Shape(1, 2, 2), Loss.MeanSquaredError, new[] { LayerSpec.AvgPool(2, stride: 1, padding: 1) }),
        new(new Shape(1, 2, 2), Loss.MeanSquaredError, new[] { LayerSpec.AvgPool(2, stride: 1, padding: Same) }),
    };

    private static int TinyIndex(int i) => Networks.Length + Prefixes.Length + i;

    /// <summary>Network <paramref name="n"/> with random parameters and running statistics, with the doubles loaded.</summary>
    private static (INetwork Network, NaiveNetwork Reference, double[] Parameters, double[] Buffers) Create(int n, int seed)
    {
        var network = Compiled.Value.Create(n);
        var reference = new NaiveNetwork(Compiled.Value.Decls[n]);
        var (parameters, buffers) = Parity.LoadRandomState(network, reference, new Random(seed));
        return (network, reference, parameters, buffers);
    }

    private static float[] RandomFloats(Random rng, int count) => Parity.ToFloat(Parity.RandomInput(rng, count));

    private static double[] Widen(ReadOnlySpan<float> values)
    {
        var result = new double[values.Length];
        for (int i = 0; i < values.Length; i++) result[i] = values[i];
        return result;
    }

    // ------------------------------------------------------------------ forward

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void LastLayerMatchesGeneratedForwardAndTheReference(int n)
    {
        var (network, reference, parameters, buffers) = Create(n, seed: 100 + n);
        Assert.Equal(Compiled.Value.Decls[n].Layers.Count, network.Layers.Count);
        const int batch = 3;
        var input = RandomFloats(new Random(n), batch * network.InputSize);
        var generated = new float[batch * network.OutputSize];
        network.Forward(input, generated);

        var outputs = network.LayerOutputs(input);
        Assert.Equal(network.Layers.Count, outputs.Length);
        for (int i = 0; i < outputs.Length; i++) Assert.Equal(batch * network.Layers[i].Output.Size, outputs[i].Length);
        double error = Parity.Error(outputs[^1], Widen(generated), 1.0, out int worst);
        _output.WriteLine($"network {n}: interpreter vs generated {error:g3}");
        Assert.True(error <= 1e-5, $"interpreter vs generated Forward: {error:g3} at {worst}: {outputs[^1][worst]:g9} vs {generated[worst]:g9}");

        double referenceError = Parity.Error(outputs[^1], reference.Forward(parameters, buffers, Widen(input)), 1.0, out worst);
        Assert.True(referenceError <= 1e-5, $"interpreter vs double reference: {referenceError:g3} at {worst}");

        // The single-layer overloads agree with LayerOutputs, by index and by name.
        var last = new float[generated.Length];
        network.LayerOutput(input, network.Layers.Count - 1, last);
        Assert.Equal(outputs[^1], last);
        Assert.Equal(outputs[0], network.LayerOutput(input, network.Layers[0].Name));
    }

    [Fact]
    public void EveryIntermediateOutputMatchesTheTruncatedNetwork()
    {
        var failures = new List<string>();
        double largest = 0;
        for (int p = 0; p < Prefixes.Length; p++)
        {
            var (n, layers) = Prefixes[p];
            var (network, _, _, _) = Create(n, seed: 200 + n);
            var truncated = Compiled.Value.Create(Networks.Length + p);
            // The prefix's tensors are the full network's first ones: copy them over by name.
            foreach (var t in truncated.Tensors.Where(t => t.Kind != TensorKind.Counter))
            {
                var source = network.Tensors.Single(s => s.Name == t.Name);
                var from = t.Kind == TensorKind.Parameter ? network.Parameters : network.Buffers;
                var to = t.Kind == TensorKind.Parameter ? truncated.Parameters : truncated.Buffers;
                from.Slice(source.Offset, source.Length).CopyTo(to.Slice(t.Offset, t.Length));
            }
            const int batch = 2;
            var input = RandomFloats(new Random(300 + p), batch * network.InputSize);
            var expected = new float[batch * truncated.OutputSize];
            truncated.Forward(input, expected);
            var actual = new float[expected.Length];
            network.LayerOutput(input, layers - 1, actual);
            double error = Parity.Error(actual, Widen(expected), 1.0, out int worst);
            largest = Math.Max(largest, error);
            if (!(error <= 1e-5))
                failures.Add($"network {n} layer {layers - 1} ({network.Layers[layers - 1].Name}): {error:g3} at {worst}: {actual[worst]:g9} vs {expected[worst]:g9}");
        }
        _output.WriteLine($"{Prefixes.Length} prefixes, largest difference {largest:g3}");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void MaxPoolPaddingNeverWinsAndTiesGoToTheFirstMaximum()
    {
        var network = Compiled.Value.Create(TinyIndex(0));
        // 2×2 of negative values, 2×2 windows at stride 1 with one cell of padding: 3×3 windows, each the maximum
        // of its real cells (never the padding's 0).
        float[] input = { -1, -2, -3, -4 };
        Assert.Equal(new float[] { -1, -1, -2, -1, -1, -2, -3, -3, -4 }, network.LayerOutput(input, 0));
        // All equal: every window's gradient goes to its first real cell in row-major order.
        float[] equal = { 5, 5, 5, 5 };
        var gradient = new float[4];
        network.InputGradient(equal, Enumerable.Repeat(1f, 9).ToArray(), gradient);
        // Windows (row-major, top-left at (−1,−1) … (1,1)): first real cell of each is (0,0) for the windows at
        // (−1,−1), (−1,0), (0,−1), (0,0); (0,1) for (−1,1), (0,1); (1,0) for (1,−1), (1,0); (1,1) for (1,1).
        Assert.Equal(new float[] { 4, 2, 2, 1 }, gradient);
    }

    [Fact]
    public void AveragePoolDividesByTheWindowWithIntegerPaddingAndByRealCellsWithSame()
    {
        float[] ones = { 1, 1, 1, 1 };
        // Integer padding (count_include_pad): corners see one real cell of four, edges two.
        var padded = Compiled.Value.Create(TinyIndex(1));
        Assert.Equal(new[] { 0.25f, 0.5f, 0.25f, 0.5f, 1f, 0.5f, 0.25f, 0.5f, 0.25f }, padded.LayerOutput(ones, 0));
        var gradient = new float[4];
        padded.InputGradient(ones, Enumerable.Repeat(1f, 9).ToArray(), gradient);
        Assert.Equal(new[] { 1f, 1f, 1f, 1f }, gradient); // each cell is in four windows, each weighting it 1/4
        // Same padding (Keras): the padding goes below and right and does not count.
        var same = Compiled.Value.Create(TinyIndex(2));
        Assert.Equal(new[] { 1f, 1f, 1f, 1f }, same.LayerOutput(ones, 0));
        same.InputGradient(ones, new[] { 1f, 1f, 1f, 1f }, gradient);
        // Cell (0,0) is only in window (0,0) of 4 cells; (0,1) in (0,0)/4 and (0,1)/2; (1,1) in all four: 1/4+1/2+1/2+1.
        Assert.Equal(new[] { 0.25f, 0.75f, 0.75f, 2.25f }, gradient);
    }

    // ------------------------------------------------------------------ gradients

    /// <summary>Central differences of Σ g·output in double through the reference, h = 1e-4 (error ~h² ≈ 1e-8).</summary>
    private static double[] FiniteDifferences(NaiveNetwork reference, double[] parameters, double[] buffers, double[] input,
        double[] outputGradient, IEnumerable<int> indices)
    {
        const double h = 1e-4;
        double F(double[] x) => reference.Forward(parameters, buffers, x).Zip(outputGradient, (y, g) => y * g).Sum();
        var numeric = new double[input.Length];
        foreach (int i in indices)
        {
            var x = (double[])input.Clone();
            x[i] = input[i] + h;
            double plus = F(x);
            x[i] = input[i] - h;
            numeric[i] = (plus - F(x)) / (2 * h);
        }
        return numeric;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void InputGradientMatchesFiniteDifferences(int n)
    {
        var (network, reference, parameters, buffers) = Create(n, seed: 400 + n);
        var rng = new Random(500 + n);
        const int batch = 2;
        var input = RandomFloats(rng, batch * network.InputSize);
        var outputGradient = RandomFloats(rng, batch * network.OutputSize);
        var gradient = new float[input.Length];
        var output = new float[batch * network.OutputSize];
        network.InputGradient(input, outputGradient, gradient, output);

        var generated = new float[output.Length];
        network.Forward(input, generated);
        Assert.True(Parity.Error(output, Widen(generated), 1.0, out _) <= 1e-5, "the output written alongside the gradient");

        // About 64 inputs spread over both samples (the double reference is slow); LeNet5's ReLU and max-pool
        // kinks are not crossed at these inputs with h = 1e-4, which the tolerance would show.
        int step = (input.Length + 63) / 64;
        var indices = Enumerable.Range(0, input.Length).Where(i => i % step == step / 2).ToList();
        var numeric = FiniteDifferences(reference, parameters, buffers, Widen(input), Widen(outputGradient), indices);
        var analytic = indices.Select(i => (double)gradient[i]).ToArray();
        var expected = indices.Select(i => numeric[i]).ToArray();
        double scale = expected.Max(Math.Abs);
        // Relative to the largest component (these gradients are small: saturated sigmoids, small weights). The
        // float32 backward carries ~1e-6 relative rounding and the double central difference ~h² = 1e-8, so
        // 1e-4 has a wide margin and still catches any wrong term.
        double error = Parity.Error(analytic, expected, 1e-12, out int worst);
        _output.WriteLine($"network {n}: input gradient vs finite differences {error:g3} relative over {indices.Count} inputs (largest component {scale:g3})");
        Assert.True(scale > 1e-5, $"degenerate case: the largest gradient component is {scale:g3}");
        Assert.True(error <= 1e-4, $"network {n}: error {error:g3} at input {indices[worst]}: analytic {analytic[worst]:g9}, numeric {expected[worst]:g9}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void LayerGradientsAgreeWithDirectionalDerivatives(int n)
    {
        // For every layer L: ⟨∂F/∂A_L, dA_L/dx·v⟩ = ⟨∂F/∂x, v⟩, with dA_L/dx·v the central difference of the
        // truncated reference network along a random direction v.
        var (network, _, parameters, buffers) = Create(n, seed: 600 + n);
        var rng = new Random(700 + n);
        var input = RandomFloats(rng, network.InputSize);
        var outputGradient = RandomFloats(rng, network.OutputSize);
        var direction = Parity.RandomInput(rng, network.InputSize);
        var inputGradient = new float[network.InputSize];
        network.InputGradient(input, outputGradient, inputGradient);
        double expected = inputGradient.Select((g, i) => g * direction[i]).Sum();
        double magnitude = inputGradient.Select((g, i) => Math.Abs(g * direction[i])).Sum();
        Assert.True(magnitude > 1e-5, $"degenerate case: Σ|g·v| = {magnitude:g3}");

        for (int layer = 0; layer < network.Layers.Count; layer++)
        {
            var layerGradient = new float[network.Layers[layer].Output.Size];
            network.LayerGradient(input, layer, outputGradient, layerGradient);
            var truncated = new NaiveNetwork(new NetDecl(Networks[n].Input, Loss.MeanSquaredError, Networks[n].Layers.Take(layer + 1)));
            const double h = 1e-4;
            var x = Widen(input);
            var plus = truncated.Forward(parameters.Take(truncated.ParameterCount).ToArray(), buffers.Take(truncated.BufferCount).ToArray(),
                x.Select((v, i) => v + h * direction[i]).ToArray());
            var minus = truncated.Forward(parameters.Take(truncated.ParameterCount).ToArray(), buffers.Take(truncated.BufferCount).ToArray(),
                x.Select((v, i) => v - h * direction[i]).ToArray());
            double actual = layerGradient.Select((g, i) => g * (plus[i] - minus[i]) / (2 * h)).Sum();
            Assert.True(Math.Abs(actual - expected) <= 1e-4 * magnitude,
                $"network {n} layer {layer} ({network.Layers[layer].Name}): ⟨layer gradient, J v⟩ = {actual:g9}, ⟨input gradient, v⟩ = {expected:g9}");
        }
        // The last layer's gradient is the output gradient itself.
        var lastGradient = new float[network.OutputSize];
        network.LayerGradient(input, network.Layers[^1].Name, outputGradient, lastGradient);
        Assert.Equal(outputGradient, lastGradient);
    }

    [Fact]
    public void SaliencyIsTheLogitGradientWhenTheLastLayerIsSoftmax()
    {
        const int n = 1; // ends with Softmax; its prefix without it gives the logits
        var (network, _, _, _) = Create(n, seed: 800);
        int prefix = Array.IndexOf(Prefixes, (n, Networks[n].Layers.Count - 1));
        var logits = Compiled.Value.Create(Networks.Length + prefix);
        network.Parameters.CopyTo(logits.Parameters);
        const int batch = 3;
        var input = RandomFloats(new Random(801), batch * network.InputSize);
        int[] classes = { 2, 0, 5 };
        var saliency = new float[input.Length];
        network.Saliency(input, classes, saliency);

        var oneHot = new float[batch * logits.OutputSize];
        for (int s = 0; s < batch; s++) oneHot[s * logits.OutputSize + classes[s]] = 1;
        var expected = new float[input.Length];
        logits.InputGradient(input, oneHot, expected);
        Assert.True(Parity.Error(saliency, Widen(expected), 1e-3, out _) <= 1e-6);
        Assert.Contains(saliency, v => Math.Abs(v) > 1e-4);

        // Through the probability instead (a one-hot on the Softmax output) the gradient differs.
        var throughSoftmax = new float[input.Length];
        network.InputGradient(input, oneHot, throughSoftmax);
        Assert.True(Parity.Error(throughSoftmax, Widen(saliency), 1e-3, out _) > 1e-2);

        // One class for every sample, and the allocating overload.
        var single = network.Saliency(input, 2);
        var perSample = new float[input.Length];
        network.Saliency(input, new[] { 2, 2, 2 }, perSample);
        Assert.Equal(perSample, single);
    }

    [Fact]
    public void SaliencyOfPredictionUsesTheWinningClass()
    {
        var (network, _, _, _) = Create(0, seed: 900);
        const int batch = 4;
        var input = RandomFloats(new Random(901), batch * network.InputSize);
        var output = new float[batch * network.OutputSize];
        network.Forward(input, output);
        var winners = new int[batch];
        var saliency = new float[input.Length];
        network.SaliencyOfPrediction(input, saliency, winners);
        for (int s = 0; s < batch; s++)
        {
            var scores = output.AsSpan(s * 10, 10).ToArray();
            Assert.Equal(Array.IndexOf(scores, scores.Max()), winners[s]);
        }
        var expected = new float[input.Length];
        network.Saliency(input, winners, expected);
        Assert.Equal(expected, saliency);
    }

    [Fact]
    public void GradCamWeighsTheFeatureMapsByTheirMeanGradient()
    {
        var (network, _, _, _) = Create(0, seed: 1000);
        const int batch = 2, layer = 2, classIndex = 3; // conv2 of LeNet5: 16×10×10
        var input = RandomFloats(new Random(1001), batch * network.InputSize);
        var shape = network.Layers[layer].Output;
        var map = new float[batch * shape.H * shape.W];
        network.GradCam(input, layer, classIndex, map);

        var activations = network.LayerOutput(input, layer);
        var oneHot = new float[batch * network.OutputSize];
        for (int s = 0; s < batch; s++) oneHot[s * network.OutputSize + classIndex] = 1;
        var gradient = new float[activations.Length];
        network.LayerGradient(input, layer, oneHot, gradient);
        int plane = shape.H * shape.W;
        for (int s = 0; s < batch; s++)
            for (int p = 0; p < plane; p++)
            {
                double sum = 0;
                for (int c = 0; c < shape.C; c++)
                {
                    double alpha = gradient.Skip((s * shape.C + c) * plane).Take(plane).Sum(v => (double)v) / plane;
                    sum += alpha * activations[(s * shape.C + c) * plane + p];
                }
                Assert.True(Math.Abs(Math.Max(sum, 0) - map[s * plane + p]) <= 1e-5 * Math.Max(1, Math.Abs(sum)), $"sample {s} cell {p}: {map[s * plane + p]} vs {sum}");
            }
        Assert.Contains(map, v => v > 0);
        Assert.Equal(map, network.GradCam(input, "conv2", classIndex));
    }

    // ------------------------------------------------------------------ concurrency and speed

    [Fact]
    public void ConcurrentCallsOnOneNetworkGiveTheSequentialResults()
    {
        var (network, _, _, _) = Create(2, seed: 1100);
        var rng = new Random(1101);
        var inputs = Enumerable.Range(0, 8).Select(_ => RandomFloats(rng, network.InputSize)).ToArray();
        var expected = inputs.Select(x => network.Saliency(x, 1)).ToArray();
        var actual = new float[inputs.Length][];
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 4 }, k =>
        {
            int i = k % inputs.Length;
            var result = network.Saliency(inputs[i], 1);
            lock (actual) actual[i] = result;
            Assert.Equal(expected[i], result);
        });
        Assert.All(actual, Assert.NotNull);
    }

    [Fact]
    public void SpeedOnLeNet5()
    {
        var (network, _, _, _) = Create(0, seed: 1200);
        var input = RandomFloats(new Random(1201), network.InputSize);
        var output = new float[network.OutputSize];
        var gradient = new float[network.InputSize];
        var outputGradient = new float[network.OutputSize];
        outputGradient[0] = 1;
        for (int i = 0; i < 100; i++) { network.LayerOutput(input, network.Layers.Count - 1, output); network.InputGradient(input, outputGradient, gradient); network.Forward(input, output); }

        const int runs = 200;
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < runs; i++) network.LayerOutput(input, network.Layers.Count - 1, output);
        double forward = watch.Elapsed.TotalMilliseconds / runs;
        watch.Restart();
        for (int i = 0; i < runs; i++) network.InputGradient(input, outputGradient, gradient);
        double backward = watch.Elapsed.TotalMilliseconds / runs;
        watch.Restart();
        for (int i = 0; i < runs; i++) network.Forward(input, output);
        double generated = watch.Elapsed.TotalMilliseconds / runs;
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < runs; i++) network.InputGradient(input, outputGradient, gradient);
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        _output.WriteLine($"LeNet5, one image: interpreter forward {forward:F3} ms, forward + input gradient {backward:F3} ms, " +
                          $"generated Forward {generated:F4} ms; {allocated / runs} bytes allocated per InputGradient");
        Assert.True(backward < 50, $"forward + input gradient took {backward:F1} ms per LeNet5 image");
        Assert.True(allocated / runs < 64, $"the span overload allocated {allocated / runs} bytes per call");
    }

    // ------------------------------------------------------------------ bad arguments

    [Fact]
    public void BadArgumentsAreRefusedClearly()
    {
        var (network, _, _, _) = Create(1, seed: 1300); // 3×11×9 → 6
        var input = new float[network.InputSize];
        var gradient = new float[network.InputSize];
        var outputGradient = new float[network.OutputSize];

        Assert.Throws<ArgumentNullException>(() => ((INetwork)null!).LayerOutputs(input));
        var e = Assert.Throws<ArgumentException>(() => network.LayerOutputs(new float[network.InputSize + 1]));
        Assert.Equal("input", e.ParamName);
        Assert.Throws<ArgumentException>(() => network.LayerOutputs(ReadOnlySpan<float>.Empty));
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => network.LayerOutput(input, 0, new float[3])).ParamName);
        Assert.Equal("layer", Assert.Throws<ArgumentOutOfRangeException>(() => network.LayerOutput(input, -1, new float[3])).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => network.LayerOutput(input, network.Layers.Count));
        var unknown = Assert.Throws<ArgumentException>(() => network.LayerOutput(input, "conv9"));
        Assert.Contains("conv1, conv2", unknown.Message);
        Assert.Equal("outputGradient", Assert.Throws<ArgumentException>(() => network.InputGradient(input, new float[5], gradient)).ParamName);
        Assert.Equal("inputGradient", Assert.Throws<ArgumentException>(() => network.InputGradient(input, outputGradient, new float[2 * network.InputSize])).ParamName);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => network.InputGradient(input, outputGradient, gradient, new float[1])).ParamName);
        Assert.Equal("layerGradient", Assert.Throws<ArgumentException>(() => network.LayerGradient(input, 0, outputGradient, new float[1])).ParamName);
        Assert.Equal("classIndex", Assert.Throws<ArgumentOutOfRangeException>(() => network.Saliency(input, 6)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => network.Saliency(input, -1, gradient));
        Assert.Equal("classIndices", Assert.Throws<ArgumentException>(() => network.Saliency(input, new[] { 1, 2 }, gradient)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => network.Saliency(input, new[] { 7 }, gradient));
        Assert.Equal("predictedClasses", Assert.Throws<ArgumentException>(() => network.SaliencyOfPrediction(input, gradient, new int[2])).ParamName);
        Assert.Equal("layer", Assert.Throws<ArgumentException>(() => network.GradCam(input, "dense1", 0)).ParamName); // a vector layer
        Assert.Throws<ArgumentOutOfRangeException>(() => network.GradCam(input, 0, 6, new float[36]));
        Assert.Equal("map", Assert.Throws<ArgumentException>(() => network.GradCam(input, 0, 0, new float[5])).ParamName);
        // Nothing was written by the refused calls.
        Assert.All(gradient, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void NetworksThatDoNotDescribeTheirLayersAreRefused()
    {
        INetwork handWritten = new UndescribedNetwork();
        var e = Assert.Throws<NotSupportedException>(() => handWritten.LayerOutputs(new float[2]));
        Assert.Contains("Layers is empty", e.Message);
        Assert.Throws<NotSupportedException>(() => handWritten.InputGradient(new float[2], new float[1], new float[2]));
        Assert.Throws<NotSupportedException>(() => handWritten.Saliency(new float[2], 0));
        Assert.Throws<NotSupportedException>(() => handWritten.LayerIndex("dense1"));
    }

    /// <summary>A hand-written network, 2 → 1, which does not override <see cref="INetwork.Layers"/>.</summary>
    private sealed class UndescribedNetwork : INetwork
    {
        private readonly float[] _parameters = { 1, 1 };
        private readonly float[] _gradients = new float[2];
        public string NetworkName => "Undescribed";
        public int InputSize => 2;
        public int OutputSize => 1;
        public int ParameterCount => 2;
        public Loss Loss => Loss.MeanSquaredError;
        public Span<float> Parameters => _parameters;
        public Span<float> Gradients => _gradients;
        public Span<float> Buffers => Span<float>.Empty;
        public Span<long> Counters => Span<long>.Empty;
        public IReadOnlyList<TensorInfo> Tensors => new[] { new TensorInfo("w", new[] { 1, 2 }, TensorKind.Parameter, 0, 2) };
        public int MaxDegreeOfParallelism { get; set; } = 1;
        public void Forward(ReadOnlySpan<float> input, Span<float> output)
        {
            for (int s = 0; s < output.Length; s++) output[s] = input[2 * s] * _parameters[0] + input[2 * s + 1] * _parameters[1];
        }
        public float ComputeGradients(ReadOnlySpan<float> input, ReadOnlySpan<int> labels) => throw new NotSupportedException();
        public float ComputeGradients(ReadOnlySpan<float> input, ReadOnlySpan<float> targets) => throw new NotSupportedException();
    }
}
