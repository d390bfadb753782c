using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using Unrolled.Tests.Harness;
using Unrolled.Tests.Reference;
using Xunit;

namespace Unrolled.Tests
{
    /// <summary>The benchmark networks as test-side declarations, mirroring the attributes of tests/Benchmarks/Networks.cs (linked into this project).</summary>
    public static class Benchmarks
    {
        private static readonly Activation R = Activation.ReLU;

        public static readonly NetDecl LeNet5 = new(new Shape(1, 28, 28), new[]
        {
            LayerSpec.Conv(6, 5, padding: 2, activation: R), LayerSpec.MaxPool(2),
            LayerSpec.Conv(16, 5, activation: R), LayerSpec.MaxPool(2),
            LayerSpec.Dense(120, activation: R), LayerSpec.Dense(84, activation: R), LayerSpec.Dense(10),
        });

        public static readonly NetDecl SimpleConvNet = new(new Shape(1, 28, 28), new[]
        {
            LayerSpec.Conv(30, 5, activation: R), LayerSpec.MaxPool(2),
            LayerSpec.Dense(100, activation: R), LayerSpec.Dense(10),
        });

        public static readonly NetDecl KerasBaseline = new(new Shape(3, 32, 32), new[]
        {
            LayerSpec.Conv(6, 5, padding: Padding.Same), LayerSpec.Of(LayerKind.BatchNorm), LayerSpec.Of(LayerKind.ReLU),
            LayerSpec.MaxPool(2), LayerSpec.Dropout(0.2),
            LayerSpec.Dense(128, activation: R), LayerSpec.Dropout(0.2), LayerSpec.Dense(10),
        });

        public static readonly NetDecl CifarVgg = new(new Shape(3, 32, 32), new[]
        {
            LayerSpec.Conv(32, 3, padding: 1, activation: R), LayerSpec.Conv(32, 3, padding: 1, activation: R), LayerSpec.MaxPool(2),
            LayerSpec.Conv(64, 3, padding: 1, activation: R), LayerSpec.Conv(64, 3, padding: 1, activation: R), LayerSpec.MaxPool(2),
            LayerSpec.Dense(256, activation: R), LayerSpec.Dense(10),
        });

        /// <summary>Name → (declaration, factory of the class the analyzer generated).</summary>
        public static readonly IReadOnlyDictionary<string, (NetDecl Decl, Func<int, INetwork> Create)> All =
            new Dictionary<string, (NetDecl, Func<int, INetwork>)>
            {
                ["LeNet5"] = (LeNet5, seed => new global::Benchmarks.LeNet5(seed)),
                ["SimpleConvNet"] = (SimpleConvNet, seed => new global::Benchmarks.SimpleConvNet(seed)),
                ["KerasBaseline"] = (KerasBaseline, seed => new global::Benchmarks.KerasBaseline(seed)),
                ["CifarVgg"] = (CifarVgg, seed => new global::Benchmarks.CifarVgg(seed)),
            };

        public static IEnumerable<object[]> Names() => All.Keys.Select(k => new object[] { k });
    }

    /// <summary>
    /// Generated inference against the naive double-precision reference. Error metric (see <see cref="Parity"/>):
    /// max|actual − expected| / max(1, max|expected|) ≤ 1e-5 over all outputs of the batch.
    /// </summary>
    public class BenchmarkForwardTests
    {
        [Theory]
        [MemberData(nameof(Benchmarks.Names), MemberType = typeof(Benchmarks))]
        public void ForwardMatchesReference(string name)
        {
            var (decl, create) = Benchmarks.All[name];
            var reference = new NaiveNetwork(decl);
            var network = create(0);
            // Batch 17 exercises remainders of any batch blocking (not for CifarVgg: the reference is slow there).
            var batches = name == "CifarVgg" ? new[] { 1, 5 } : new[] { 1, 5, 17 };
            var failures = batches.Select(batch => Parity.ForwardMismatch(network, reference, batch, seed: 100 + batch))
                .Where(p => p != null).ToList();
            // One core must give the same answer as all of them.
            var single = create(0);
            single.MaxDegreeOfParallelism = 1;
            if (Parity.ForwardMismatch(single, reference, 5, seed: 105) is { } problem) failures.Add("MaxDegreeOfParallelism = 1: " + problem);
            Assert.True(failures.Count == 0, $"{name}: " + string.Join("\n", failures));
        }

        /// <summary>
        /// A sample's output is the same bits whether it runs alone or inside a batch, and on every call: the kernels
        /// for one sample and for blocks of samples sum in the same order, and the large dense layers (which walk their
        /// weights forwards and backwards on alternate passes) only change the order of whole outputs.
        /// </summary>
        [Theory]
        [MemberData(nameof(Benchmarks.Names), MemberType = typeof(Benchmarks))]
        public void OutputDoesNotDependOnTheBatchOrOnEarlierCalls(string name)
        {
            var network = Benchmarks.All[name].Create(0);
            network.MaxDegreeOfParallelism = 1;
            int n = network.InputSize, o = network.OutputSize, batch = 9;
            var rng = new Random(7);
            var input = new float[batch * n];
            for (int i = 0; i < input.Length; i++) input[i] = (float)(rng.NextDouble() * 2 - 1);
            var together = new float[batch * o];
            network.Forward(input, together);
            for (int call = 0; call < 3; call++)
            {
                var again = new float[batch * o];
                network.Forward(input, again);
                Assert.Equal(together, again);
                for (int s = 0; s < batch; s++)
                {
                    var alone = new float[o];
                    network.Forward(input.AsSpan(s * n, n), alone);
                    Assert.True(alone.AsSpan().SequenceEqual(together.AsSpan(s * o, o)), $"{name}: sample {s} alone differs from the batch (call {call})");
                }
            }
        }

        [Theory]
        [MemberData(nameof(Benchmarks.Names), MemberType = typeof(Benchmarks))]
        public void ConstantsAndTensorsMatchTheDeclaration(string name)
        {
            var (decl, create) = Benchmarks.All[name];
            var reference = new NaiveNetwork(decl);
            var network = create(0);
            Assert.Null(Parity.LayoutMismatch(network, reference));
            Assert.Equal(name, network.NetworkName);
            var type = network.GetType();
            Assert.Equal(reference.InputSize, ConstantOf(type, "InputSize"));
            Assert.Equal(reference.OutputSize, ConstantOf(type, "OutputSize"));
            Assert.Equal(reference.ParameterCount, ConstantOf(type, "ParameterCount"));
        }

        private static int ConstantOf(Type type, string name)
        {
            var field = type.GetField(name, BindingFlags.Public | BindingFlags.Static);
            Assert.True(field is { IsLiteral: true }, $"{type.Name}.{name} is not a public const");
            return (int)field!.GetRawConstantValue()!;
        }

        [Fact]
        public void LeNet5ParameterCountAndSummary()
        {
            Assert.Equal(61706, global::Benchmarks.LeNet5.ParameterCount);
            string summary = global::Benchmarks.LeNet5.Summary;
            Assert.Contains("61,706", summary);
            // Each layer's output shape, written as 6×28×28, 6x28x28 or (6, 28, 28).
            foreach (var shape in new[] { "6 28 28", "6 14 14", "16 10 10", "16 5 5" })
            {
                string pattern = @"\b" + string.Join(@"\s*[×x*,]\s*", shape.Split(' ')) + @"\b";
                Assert.True(Regex.IsMatch(summary, pattern), $"summary lacks shape {shape}:\n{summary}");
            }
            foreach (var units in new[] { "120", "84", "10" }) Assert.Matches(@"\b" + units + @"\b", summary);
            foreach (var layer in Benchmarks.LeNet5.LayerNames()) Assert.Contains(layer, summary);
        }

        /// <summary>PyTorch's default initialisation: weights and biases uniform in ±1/√fan_in; batch norm γ = 1,
        /// β = 0, running mean 0, running variance 1; the same seed gives the same weights.</summary>
        [Theory]
        [MemberData(nameof(Benchmarks.Names), MemberType = typeof(Benchmarks))]
        public void InitialisationFollowsPyTorchDefaults(string name)
        {
            var (decl, create) = Benchmarks.All[name];
            var reference = new NaiveNetwork(decl);
            var a = create(42);
            var batchNormLayers = decl.LayerNames().Where((_, i) => decl.Layers[i].Kind == LayerKind.BatchNorm).ToHashSet();
            foreach (var tensor in reference.Tensors.Where(t => t.Kind == TensorKind.Parameter))
            {
                var values = a.Parameters.Slice(tensor.Offset, tensor.Length).ToArray();
                if (batchNormLayers.Contains(tensor.Name.Split('.')[0]))
                {
                    float expected = tensor.Name.EndsWith(".weight") ? 1f : 0f;
                    Assert.All(values, v => Assert.Equal(expected, v));
                    continue;
                }
                int fanIn = tensor.Name.EndsWith(".weight")
                    ? tensor.Shape.Skip(1).Aggregate(1, (x, y) => x * y)
                    : reference.Tensors.First(t => t.Name == tensor.Name.Replace(".bias", ".weight")).Shape.Skip(1).Aggregate(1, (x, y) => x * y);
                double bound = 1 / Math.Sqrt(fanIn);
                Assert.True(values.All(v => Math.Abs(v) <= bound * (1 + 1e-6)), $"{tensor.Name} exceeds ±1/√{fanIn}");
                Assert.True(values.Max() > bound / 2 && values.Min() < -bound / 2 || values.Length < 8, $"{tensor.Name} does not spread over ±1/√{fanIn}");
            }
            var buffers = a.Buffers.ToArray();
            foreach (var tensor in reference.Tensors.Where(t => t.Kind == TensorKind.Buffer))
                Assert.All(buffers.Skip(tensor.Offset).Take(tensor.Length), v => Assert.Equal(tensor.Name.EndsWith("running_var") ? 1f : 0f, v));
            Assert.Equal(a.Parameters.ToArray(), create(42).Parameters.ToArray());
            Assert.NotEqual(a.Parameters.ToArray(), create(43).Parameters.ToArray());
        }

        /// <summary>Padded cells never win a max pool: with every real value negative, a padded window still
        /// gives the largest real value, not the padding's zero.</summary>
        [Fact]
        public void MaxPoolPaddingNeverWins()
        {
            var decl = new NetDecl(new Shape(1, 3, 3), Loss.MeanSquaredError, new[]
            {
                LayerSpec.Conv(1, 1), LayerSpec.MaxPool(2, padding: 1),
            });
            var reference = new NaiveNetwork(decl);
            var network = CompiledBatch.Compile(new[] { decl }).Create(0);
            network.Parameters[0] = 1;   // weight
            network.Parameters[1] = -5;  // bias: every value is negative
            var input = Enumerable.Range(0, 9).Select(i => (float)(i * 0.1)).ToArray();
            var output = new float[network.OutputSize];
            network.Forward(input, output);
            var expected = reference.Forward(new[] { 1.0, -5 }, Array.Empty<double>(), input.Select(v => (double)v).ToArray());
            Assert.True(Parity.Error(output, expected, 1, out _) <= Parity.ForwardTolerance,
                $"got {string.Join(", ", output)}, expected {string.Join(", ", expected)}");
            Assert.All(output, v => Assert.True(v < 0));
        }
    }

    /// <summary>Hundreds of random valid declarations, 40 per in-memory compilation, each compared with the
    /// reference at batch 1, 3 and 17 (same metric and tolerance as the benchmarks).</summary>
    public class RandomForwardTests
    {
        public const int PerChunk = 40;

        /// <summary>Chunks 0–5 hold 40 small networks each (1–4 input channels, 5–20 cells a side, up to 8
        /// filters); chunks 6 and 7 hold 20 wider ones (up to 16 channels, 40 cells, 24 filters, 40 units) that
        /// reach the remainders of larger register tiles.</summary>
        public static IReadOnlyList<NetDecl> Chunk(int chunk)
        {
            var rng = new Random(1_000 + chunk);
            var options = chunk < 6 ? new RandomDeclOptions()
                : new RandomDeclOptions { MaxInputChannels = 16, MaxInputSize = 40, MaxFilters = 24, MaxUnits = 40, MaxLayers = 5 };
            return Enumerable.Range(0, chunk < 6 ? PerChunk : PerChunk / 2).Select(_ => NetDecl.Random(rng, options)).ToList();
        }

        private static readonly ConcurrentDictionary<int, Lazy<CompiledBatch>> Compiled = new();

        /// <summary>One compilation per chunk, shared by every test that checks that chunk.</summary>
        public static CompiledBatch CompiledChunk(int chunk) =>
            Compiled.GetOrAdd(chunk, c => new Lazy<CompiledBatch>(() => CompiledBatch.Compile(Chunk(c)))).Value;

        /// <summary>Checks every network of one chunk; failing ones are shrunk to their first failing layer.</summary>
        public static IReadOnlyList<string> CheckChunk(CompiledBatch compiled)
        {
            var failures = compiled.CheckAll((network, reference, i) =>
            {
                var batches = reference.InputSize <= 4 * 20 * 20 ? new[] { 1, 3, 17 } : new[] { 1, 3 };
                var problems = batches
                    .Select(batch => Parity.ForwardMismatch(network, reference, batch, seed: 10 * i + batch))
                    .Where(p => p != null).ToList();
                if (problems.Count == 0) return null;
                problems.Add(CompiledBatch.ShortestFailingForwardPrefix(reference.Decl, 3, seed: 10 * i + 3));
                return string.Join("\n    ", problems);
            });
            return failures;
        }

        public static IEnumerable<object[]> Chunks() => Enumerable.Range(0, 8).Select(i => new object[] { i });

        [Theory]
        [MemberData(nameof(Chunks))]
        public void RandomDeclarationsMatchReference(int chunk)
        {
            var compiled = CompiledChunk(chunk);
            var failures = CheckChunk(compiled);
            Assert.True(failures.Count == 0, CompiledBatch.Report($"random declarations of chunk {chunk}", compiled.Decls.Count, failures));
        }

        /// <summary>The text the declarations compile from is what the harness meant: every layer attribute appears,
        /// in order, and the compiler accepts the attributes (no errors outside the generator's files).</summary>
        [Fact]
        public void RandomDeclarationsAreValid()
        {
            var decls = Enumerable.Range(0, 8).SelectMany(Chunk).ToList();
            foreach (var decl in decls)
            {
                Assert.NotEmpty(decl.OutputShapes()); // throws when a layer does not fit
                string source = decl.ToSource("Net");
                int at = 0;
                foreach (var layer in decl.Layers)
                {
                    at = source.IndexOf(layer.ToAttribute(), at, StringComparison.Ordinal);
                    Assert.True(at >= 0, $"{layer.ToAttribute()} missing from\n{source}");
                }
            }
            var parse = Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText(CompiledBatch.Source(decls));
            Assert.Empty(parse.GetDiagnostics());
        }
    }

    /// <summary>
    /// The random forward and gradient checks once for each vector width the kernels can be limited to
    /// (<see cref="Kernels.MaxVectorBits"/>: 512, 256, 128), so the AVX-512, AVX2 and portable paths all run
    /// on a machine that has AVX-512. Not run in parallel with other tests, since the switch is global.
    /// </summary>
    [Collection(nameof(VectorWidthCollection))]
    public class VectorWidthForwardTests
    {
        [Theory]
        [InlineData(512)]
        [InlineData(256)]
        [InlineData(128)]
        public void RandomDeclarationsMatchReferenceAtWidth(int bits)
        {
            using var width = VectorWidth.Limit(bits);
            var failures = new List<string>();
            int checkedNetworks = 0;
            foreach (int chunk in new[] { 0, 6 })
            {
                var compiled = RandomForwardTests.CompiledChunk(chunk);
                failures.AddRange(RandomForwardTests.CheckChunk(compiled));
                checkedNetworks += compiled.Decls.Count;
            }
            foreach (var (name, (decl, create)) in Benchmarks.All)
            {
                if (Parity.ForwardMismatch(create(0), new NaiveNetwork(decl), 3, seed: 7) is { } problem)
                    failures.Add($"{name}: {problem}");
                checkedNetworks++;
            }
            // Training kernels too: one chunk of the random gradient declarations and LeNet5.
            var training = GeneratedGradientTests.CompiledChunk(0);
            failures.AddRange(GeneratedGradientTests.CheckChunk(training).Select(f => "training: " + f));
            if (Parity.GradientMismatch(new global::Benchmarks.LeNet5(0), new NaiveNetwork(Benchmarks.LeNet5), 3, seed: 7) is { } lenet)
                failures.Add($"training LeNet5: {lenet}");
            checkedNetworks += training.Decls.Count + 1;
            Assert.True(failures.Count == 0, CompiledBatch.Report(
                $"networks with MaxVectorBits = {bits} (path {Kernels.ActivePath})", checkedNetworks, failures));
        }
    }

    [CollectionDefinition(nameof(VectorWidthCollection), DisableParallelization = true)]
    public class VectorWidthCollection { }
}
