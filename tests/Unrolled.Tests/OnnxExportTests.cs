using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Unrolled.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace Unrolled.Tests;

/// <summary>
/// ONNX export: networks covering every layer kind are written with <see cref="OnnxExport.SaveOnnx(INetwork, string)"/>,
/// run in ONNX Runtime on the CPU at batch 1 and 3, and compared with the network's own Forward (max abs difference ≤ 1e-5).
/// </summary>
public sealed class OnnxExportTests
{
    private const float Tolerance = 1e-5f;
    private readonly ITestOutputHelper _out;
    public OnnxExportTests(ITestOutputHelper output) => _out = output;

    private const string Namespace = "OnnxNets";

    /// <summary>Hand-written networks: every layer kind, shorthands, Same padding, padded average pools, LRN, softmax.</summary>
    private static readonly (string Name, string Attributes)[] Fixed =
    {
        ("LeNetLike", """
            [Network(1, 28, 28)]
            [Conv2D(6, 5, Padding = 2, Activation = Activation.ReLU)]
            [MaxPool2D(2)]
            [Conv2D(16, 5, Activation = Activation.ReLU)]
            [MaxPool2D(2)]
            [Dense(120, Activation = Activation.ReLU)]
            [Dense(84, Activation = Activation.ReLU)]
            [Dense(10)]
            """),
        ("SameAndBatchNorm", """
            [Network(3, 13, 11)]
            [Conv2D(5, 4, 3, Stride = 2, Padding = Padding.Same, Activation = Activation.LeakyReLU)]
            [BatchNorm]
            [Conv2D(6, 3, Padding = Padding.Same, Bias = false, Activation = Activation.Tanh)]
            [BatchNorm(Name = "norm")]
            [MaxPool2D(3, Stride = 2, Padding = Padding.Same)]
            [Dropout(0.3)]
            [Flatten]
            [Dense(12, Activation = Activation.Sigmoid)]
            [BatchNorm]
            [LeakyReLU(0.2)]
            [Dense(4, Bias = false)]
            [Softmax]
            """),
        ("AvgPools", """
            [Network(2, 12, 12)]
            [Conv2D(4, 3, Padding = 1)]
            [ReLU]
            [AvgPool2D(3, Stride = 2, Padding = 1)]
            [Sigmoid]
            [AvgPool2D(2, Padding = Padding.Same, Stride = 2)]
            [Tanh]
            [AvgPool2D(3, Stride = 1, Padding = Padding.Same)]
            [GlobalAvgPool2D]
            [Dense(3)]
            """),
        ("MaxPoolPadded", """
            [Network(3, 9, 9)]
            [Conv2D(4, 3, Activation = Activation.Sigmoid)]
            [MaxPool2D(3, Stride = 2, Padding = 1)]
            [Conv2D(5, 1, 2, Stride = 1, Padding = Padding.Valid)]
            [Flatten]
            [Dense(6, Activation = Activation.Tanh)]
            [Dense(2)]
            [Softmax]
            """),
        ("LrnOdd", """
            [Network(7, 6, 6)]
            [Conv2D(8, 3, Padding = 1)]
            [LocalResponseNorm(5, Alpha = 0.01, Beta = 0.75, K = 2)]
            [Conv2D(6, 3)]
            [LocalResponseNorm(3, Alpha = 0.5, Beta = 0.6, K = 1)]
            [GlobalAvgPool2D]
            """),
        ("LrnEven", """
            [Network(6, 5, 5)]
            [Conv2D(4, 3, Padding = 1)]
            [LocalResponseNorm(4, Alpha = 0.3, Beta = 0.75, K = 1.5)]
            [Conv2D(5, 3)]
            [LocalResponseNorm(2, Alpha = 0.8, Beta = 0.5, K = 1)]
            [Flatten]
            [Dense(3)]
            """),
        ("LrnEvenLast", """
            [Network(3, 4, 4, Loss = Loss.MeanSquaredError)]
            [LocalResponseNorm(6, Alpha = 0.2, Beta = 1.1, K = 0.7)]
            """),
        ("VectorNet", """
            [Network(17, Loss = Loss.MeanSquaredError)]
            [Dense(9, Activation = Activation.LeakyReLU)]
            [BatchNorm]
            [Dropout(0.5)]
            [Dense(5)]
            [Tanh]
            """),
        ("FullyConvolutional", """
            [Network(2, 8, 8, Loss = Loss.MeanSquaredError)]
            [Conv2D(3, 3, Padding = Padding.Same, Activation = Activation.ReLU)]
            [BatchNorm]
            [Conv2D(2, 2, Stride = 2)]
            """),
    };

    private const int RandomCount = 24;
    private const int RandomSeed = 1414;

    private static readonly Lazy<(Assembly Assembly, List<NetDecl> Random)> Compiled = new(() =>
    {
        var rng = new Random(RandomSeed);
        var random = Enumerable.Range(0, RandomCount).Select(_ => NetDecl.Random(rng)).ToList();
        var source = new System.Text.StringBuilder("using Unrolled;\n\nnamespace " + Namespace + ";\n\n");
        foreach (var (name, attributes) in Fixed) source.Append(attributes).Append($"\npublic partial class {name} {{ }}\n\n");
        for (int i = 0; i < random.Count; i++) source.Append(random[i].ToSource($"Random{i}")).Append('\n');
        return (NetworkCompiler.CompileAndLoad(source.ToString()), random);
    });

    private static INetwork Create(string name, int seed = 3)
    {
        INetwork net = NetworkCompiler.Create(Compiled.Value.Assembly, $"{Namespace}.{name}", seed);
        Randomize(net, seed);
        return net;
    }

    /// <summary>Non-trivial batch-norm state: γ, β and the running mean and variance drawn at random.</summary>
    private static void Randomize(INetwork net, int seed)
    {
        var rng = new Random(seed * 7919 + 1);
        foreach (TensorInfo t in net.Tensors)
        {
            bool bn = net.Layers.Any(l => l.Type == LayerType.BatchNorm && t.Name.StartsWith(l.Name + ".", StringComparison.Ordinal));
            if (!bn || t.Kind == TensorKind.Counter) continue;
            Span<float> span = (t.Kind == TensorKind.Parameter ? net.Parameters : net.Buffers).Slice(t.Offset, t.Length);
            for (int i = 0; i < span.Length; i++)
                span[i] = t.Name.EndsWith(".running_var", StringComparison.Ordinal) ? (float)(0.3 + 1.7 * rng.NextDouble())
                    : t.Name.EndsWith(".weight", StringComparison.Ordinal) ? (float)(0.5 + rng.NextDouble())
                    : (float)(rng.NextDouble() * 2 - 1);
        }
    }

    private static float[] RandomInput(int count, int seed)
    {
        var rng = new Random(seed);
        var x = new float[count];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 4 - 2);
        return x;
    }

    /// <summary>Runs the model in ONNX Runtime at batch 1 and 3 and returns the largest |ours − ONNX Runtime|.</summary>
    private static float Compare(INetwork net, byte[] model)
    {
        using var session = new InferenceSession(model);
        Assert.Equal("input", session.InputMetadata.Keys.Single());
        Assert.Equal("output", session.OutputMetadata.Keys.Single());
        LayerShape inShape = net.Layers[0].Input;
        float worst = 0;
        foreach (int batch in new[] { 1, 3 })
        {
            float[] x = RandomInput(batch * net.InputSize, 100 + batch);
            var ours = new float[batch * net.OutputSize];
            net.Forward(x, ours);
            int[] dims = inShape.IsVector ? new[] { batch, inShape.C } : new[] { batch, inShape.C, inShape.H, inShape.W };
            var tensor = new DenseTensor<float>(x, dims);
            using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("input", tensor) });
            var outTensor = results.Single().AsTensor<float>();
            LayerShape outShape = net.Layers[^1].Output;
            int[] expectedDims = outShape.IsVector ? new[] { batch, outShape.C } : new[] { batch, outShape.C, outShape.H, outShape.W };
            Assert.Equal(expectedDims, outTensor.Dimensions.ToArray());
            float[] theirs = outTensor.ToArray();
            Assert.Equal(ours.Length, theirs.Length);
            for (int i = 0; i < ours.Length; i++)
            {
                Assert.True(float.IsFinite(ours[i]), $"{net.NetworkName}: our output {i} is {ours[i]}");
                worst = Math.Max(worst, Math.Abs(ours[i] - theirs[i]));
            }
        }
        return worst;
    }

    private static byte[] Export(INetwork net)
    {
        using var stream = new MemoryStream();
        net.SaveOnnx(stream);
        return stream.ToArray();
    }

    public static IEnumerable<object[]> FixedNames() => Fixed.Select(f => new object[] { f.Name });

    [Theory]
    [MemberData(nameof(FixedNames))]
    public void Fixed_network_runs_in_OnnxRuntime_like_Forward(string name)
    {
        INetwork net = Create(name);
        string path = Path.Combine(Path.GetTempPath(), $"unrolled-onnx-{name}-{Guid.NewGuid():N}.onnx");
        try
        {
            net.SaveOnnx(path);
            float worst = Compare(net, File.ReadAllBytes(path));
            _out.WriteLine($"{name}: max |difference| {worst:E3}");
            Assert.True(worst <= Tolerance, $"{name}: max |difference| {worst}");
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Random_networks_run_in_OnnxRuntime_like_Forward()
    {
        var random = Compiled.Value.Random;
        float worstAll = 0;
        for (int i = 0; i < random.Count; i++)
        {
            INetwork net = Create($"Random{i}", seed: i + 1);
            float worst = Compare(net, Export(net));
            _out.WriteLine($"Random{i}: max |difference| {worst:E3}  ({random[i].Describe()})");
            Assert.True(worst <= Tolerance, $"Random{i} ({random[i].Describe()}): max |difference| {worst}");
            worstAll = Math.Max(worstAll, worst);
        }
        _out.WriteLine($"{random.Count} random networks, largest difference {worstAll:E3}");
    }

    [Fact]
    public void Even_LRN_is_written_out_with_PyTorchs_window()
    {
        INetwork net = Create("LrnEven");
        var model = Unrolled.Formats.Onnx.Proto.ModelProto.Parser.ParseFrom(Export(net));
        var ops = model.Graph.Node.Select(n => n.OpType).ToList();
        Assert.DoesNotContain("LRN", ops);
        Assert.Contains("Pow", ops);
        // ONNX LRN (window c − 1 … c + 2 for size 4) would differ from PyTorch's (c − 2 … c + 1): the test networks
        // of Fixed_network_runs_in_OnnxRuntime_like_Forward (LrnEven, LrnEvenLast) check the values.
        Assert.True(Compare(net, Export(net)) <= Tolerance);
    }

    [Fact]
    public void Stream_and_path_overloads_write_the_same_model_with_state_dict_initializers()
    {
        INetwork net = Create("SameAndBatchNorm");
        byte[] viaStream = Export(net);
        string path = Path.Combine(Path.GetTempPath(), $"unrolled-onnx-{Guid.NewGuid():N}.onnx");
        try
        {
            net.SaveOnnx(path);
            Assert.Equal(viaStream, File.ReadAllBytes(path));
        }
        finally { File.Delete(path); }

        var model = Unrolled.Formats.Onnx.Proto.ModelProto.Parser.ParseFrom(viaStream);
        Assert.Equal(OnnxExport.Opset, model.OpsetImport.Single().Version);
        var initializers = model.Graph.Initializer.Select(t => t.Name).ToList();
        var expected = net.Tensors.Where(t => t.Kind != TensorKind.Counter).Select(t => t.Name).ToList();
        Assert.Equal(expected, initializers);
        Assert.Contains("norm.running_var", initializers);
        Assert.Equal("N", model.Graph.Input.Single().Type.TensorType.Shape.Dim[0].DimParam);
        var ops = model.Graph.Node.Select(n => n.OpType).ToList();
        Assert.DoesNotContain("Dropout", ops);
        Assert.Equal(new[] { "Conv", "LeakyRelu", "BatchNormalization", "Conv", "Tanh", "BatchNormalization", "MaxPool", "Flatten",
            "Gemm", "Sigmoid", "BatchNormalization", "LeakyRelu", "Gemm", "Softmax" }, ops);
        Assert.True(Compare(net, viaStream) <= Tolerance);
    }

    [Fact]
    public void A_network_without_a_layer_description_is_refused_and_no_file_is_written()
    {
        INetwork net = new Undescribed(Create("LeNetLike"));
        string path = Path.Combine(Path.GetTempPath(), $"unrolled-onnx-{Guid.NewGuid():N}.onnx");
        var error = Assert.Throws<NotSupportedException>(() => net.SaveOnnx(path));
        Assert.Contains("no layers", error.Message);
        Assert.False(File.Exists(path));
        using var stream = new MemoryStream();
        Assert.Throws<NotSupportedException>(() => net.SaveOnnx(stream));
        Assert.Equal(0, stream.Length);
    }

    /// <summary>An INetwork that keeps the interface's default (empty) <see cref="INetwork.Layers"/>.</summary>
    private sealed class Undescribed(INetwork inner) : INetwork
    {
        public string NetworkName => inner.NetworkName;
        public int InputSize => inner.InputSize;
        public int OutputSize => inner.OutputSize;
        public int ParameterCount => inner.ParameterCount;
        public Loss Loss => inner.Loss;
        public Span<float> Parameters => inner.Parameters;
        public Span<float> Gradients => inner.Gradients;
        public Span<float> Buffers => inner.Buffers;
        public Span<long> Counters => inner.Counters;
        public IReadOnlyList<TensorInfo> Tensors => inner.Tensors;
        public int MaxDegreeOfParallelism { get => inner.MaxDegreeOfParallelism; set => inner.MaxDegreeOfParallelism = value; }
        public void Forward(ReadOnlySpan<float> input, Span<float> output) => inner.Forward(input, output);
        public float ComputeGradients(ReadOnlySpan<float> input, ReadOnlySpan<int> labels) => inner.ComputeGradients(input, labels);
        public float ComputeGradients(ReadOnlySpan<float> input, ReadOnlySpan<float> targets) => inner.ComputeGradients(input, targets);
    }
}
