using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Unrolled.Tests.Interop;
using Xunit;

namespace Unrolled.Tests.Interop
{
    // Networks with PyTorch twins in python/interop_models.py (same attribute names, same computation).

    /// <summary>LeNet-5 with default names: conv1, conv2, dense1..3. Twin: LeNet5.</summary>
    [Network(1, 28, 28)]
    [Conv2D(6, 5, Padding = 2, Activation = Activation.ReLU)]
    [MaxPool2D(2)]
    [Conv2D(16, 5, Activation = Activation.ReLU)]
    [MaxPool2D(2)]
    [Dense(120, Activation = Activation.ReLU)]
    [Dense(84, Activation = Activation.ReLU)]
    [Dense(10)]
    public partial class TorchLeNet5 { }

    /// <summary>Batch norm after a convolution (BatchNorm2d) and after a dense layer (BatchNorm1d), explicit
    /// names mixed with default ones (whose ordinals count the named layers too), no-bias layers, dropout.
    /// Twin: BnNet.</summary>
    [Network(3, 12, 12)]
    [Conv2D(8, 3, Padding = 1, Name = "features")]
    [BatchNorm(Name = "features_bn")]
    [ReLU]
    [MaxPool2D(2)]
    [Conv2D(12, 3, Bias = false)]
    [BatchNorm]
    [LeakyReLU(0.1)]
    [Dropout(0.3)]
    [Flatten]
    [Dense(32, Bias = false, Name = "hidden")]
    [BatchNorm]
    [Tanh]
    [Dense(5, Name = "classifier")]
    public partial class TorchBnNet { }

    /// <summary>Same padding with stride 2 (asymmetric), Sigmoid, LRN, padded max and average pooling,
    /// a rectangular kernel, global average pooling, LeakyReLU and Softmax. Twin: MiscNet.</summary>
    [Network(2, 10, 10)]
    [Conv2D(6, 3, Stride = 2, Padding = Padding.Same, Activation = Activation.Sigmoid)]
    [LocalResponseNorm(3, Alpha = 0.5, Beta = 0.6, K = 2)]
    [MaxPool2D(3, Stride = 1, Padding = 1)]
    [AvgPool2D(3, Stride = 2, Padding = 1)]
    [Conv2D(5, 2, 3)]
    [GlobalAvgPool2D]
    [Dense(4, Activation = Activation.LeakyReLU)]
    [Softmax]
    public partial class TorchMiscNet { }
}

namespace Unrolled.Tests
{
    /// <summary>A fact that is skipped, with the reason, when /usr/bin/python3 cannot import torch.</summary>
    public sealed class TorchFactAttribute : FactAttribute
    {
        public TorchFactAttribute()
        {
            if (PyTorch.UnavailableReason is string reason)
                Skip = reason;
        }
    }

    /// <summary>A theory that is skipped, with the reason, when /usr/bin/python3 cannot import torch.</summary>
    public sealed class TorchTheoryAttribute : TheoryAttribute
    {
        public TorchTheoryAttribute()
        {
            if (PyTorch.UnavailableReason is string reason)
                Skip = reason;
        }
    }

    /// <summary>Runs the helper scripts under python/ (copied next to the test assembly) with /usr/bin/python3.</summary>
    public static class PyTorch
    {
        public const string Python = "/usr/bin/python3";
        private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);
        private static readonly Lazy<string?> Unavailable = new(Probe);

        /// <summary>Null when torch imports; otherwise why the PyTorch tests are skipped.</summary>
        public static string? UnavailableReason => Unavailable.Value;

        public static string ScriptDirectory => Path.Combine(AppContext.BaseDirectory, "python");

        private static string? Probe()
        {
            if (!File.Exists(Python))
                return $"PyTorch interop tests need {Python} with torch; {Python} does not exist.";
            try
            {
                var (exitCode, output) = Run(new[] { "-c", "import torch; print(torch.__version__)" }, TimeSpan.FromMinutes(1));
                return exitCode == 0
                    ? null
                    : $"PyTorch interop tests need torch: `{Python} -c \"import torch\"` exited with {exitCode}:\n{output}";
            }
            catch (Exception e)
            {
                return $"PyTorch interop tests need torch: running {Python} failed: {e.Message}";
            }
        }

        /// <summary>Runs python with the arguments and returns its exit code and combined output.</summary>
        public static (int ExitCode, string Output) Run(IEnumerable<string> arguments, TimeSpan? timeout = null)
        {
            var start = new ProcessStartInfo(Python)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = Directory.Exists(ScriptDirectory) ? ScriptDirectory : AppContext.BaseDirectory,
            };
            foreach (string argument in arguments)
                start.ArgumentList.Add(argument);
            start.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
            start.Environment["OMP_NUM_THREADS"] = "1";

            using var process = Process.Start(start)!;
            var output = new StringBuilder();
            var gate = new object();
            process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (gate) output.AppendLine(e.Data); };
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (gate) output.AppendLine(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            if (!process.WaitForExit(timeout ?? Timeout))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                throw new TimeoutException($"{Python} {string.Join(' ', start.ArgumentList)} did not finish within {timeout ?? Timeout}:\n{output}");
            }
            process.WaitForExit(); // flushes the asynchronous readers
            lock (gate)
                return (process.ExitCode, output.ToString());
        }

        /// <summary>Runs python/interop.py and fails the test with its output if it does not exit with 0.</summary>
        public static string RunInterop(params string[] arguments)
        {
            string script = Path.Combine(ScriptDirectory, "interop.py");
            Assert.True(File.Exists(script), $"{script} is missing: python/*.py must be copied to the test output.");
            var (exitCode, output) = Run(new[] { script }.Concat(arguments));
            Assert.True(exitCode == 0, $"interop.py {string.Join(' ', arguments)} exited with {exitCode}:\n{output}");
            return output;
        }
    }

    public class PyTorchInteropTests : IDisposable
    {
        private readonly string _directory = Path.Combine(Path.GetTempPath(), "unrolled-torch-" + Guid.NewGuid().ToString("N"));

        public PyTorchInteropTests() => Directory.CreateDirectory(_directory);

        public void Dispose()
        {
            try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }

        /// <summary>The C# networks by the name of their twin in interop_models.py.</summary>
        private static INetwork Create(string model, int seed) => model switch
        {
            "lenet5" => new TorchLeNet5(seed),
            "bnnet" => new TorchBnNet(seed),
            "miscnet" => new TorchMiscNet(seed),
            _ => throw new ArgumentOutOfRangeException(nameof(model), model, null),
        };

        private static readonly Dictionary<string, string[]> ExpectedTensors = new()
        {
            ["lenet5"] = new[]
            {
                "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "dense1.weight", "dense1.bias",
                "dense2.weight", "dense2.bias", "dense3.weight", "dense3.bias",
            },
            ["bnnet"] = new[]
            {
                "features.weight", "features.bias",
                "features_bn.weight", "features_bn.bias", "features_bn.running_mean", "features_bn.running_var", "features_bn.num_batches_tracked",
                "conv2.weight",
                "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var", "bn2.num_batches_tracked",
                "hidden.weight",
                "bn3.weight", "bn3.bias", "bn3.running_mean", "bn3.running_var", "bn3.num_batches_tracked",
                "classifier.weight", "classifier.bias",
            },
            ["miscnet"] = new[] { "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "dense1.weight", "dense1.bias" },
        };

        [TorchTheory]
        [InlineData("lenet5")]
        [InlineData("bnnet")]
        [InlineData("miscnet")]
        public void SavedFileLoadsIntoTorchWithStrictAndComputesTheSameOutput(string model)
        {
            const int batch = 5;
            INetwork net = Create(model, seed: 11);
            Assert.Equal(ExpectedTensors[model].OrderBy(n => n, StringComparer.Ordinal), net.Tensors.Select(t => t.Name).OrderBy(n => n, StringComparer.Ordinal));

            // A few training steps give non-default batch-norm statistics (and counters), then the batch-norm
            // affine parameters and statistics are spread further so that eval-mode normalisation matters.
            var random = new Random(5);
            float[] trainInput = RandomFloats(random, 8 * net.InputSize, scale: 2f, shift: 0.3f);
            int[] labels = Enumerable.Range(0, 8).Select(i => i % net.OutputSize).ToArray();
            var optimizer = Optimizer.Sgd(0.05f, momentum: 0.9f);
            for (int step = 0; step < 3; step++)
                Assert.True(float.IsFinite(net.TrainStep(trainInput, labels, optimizer)));
            foreach (TensorInfo tensor in net.Tensors)
            {
                Span<float> parameters = net.Parameters.Slice(tensor.Offset, tensor.Length);
                if (tensor.Kind == TensorKind.Buffer && tensor.Name.EndsWith(".running_mean", StringComparison.Ordinal))
                    for (int i = 0; i < tensor.Length; i++) net.Buffers[tensor.Offset + i] += (float)(random.NextDouble() - 0.5);
                else if (tensor.Kind == TensorKind.Buffer && tensor.Name.EndsWith(".running_var", StringComparison.Ordinal))
                    for (int i = 0; i < tensor.Length; i++) net.Buffers[tensor.Offset + i] *= (float)(0.5 + random.NextDouble());
                else if (tensor.Kind == TensorKind.Parameter && IsBatchNorm(net, tensor.Name))
                    for (int i = 0; i < tensor.Length; i++) parameters[i] += (float)(random.NextDouble() - 0.5);
            }
            if (model == "bnnet")
                Assert.All(net.Counters.ToArray(), c => Assert.Equal(3L, c));

            float[] input = RandomFloats(random, batch * net.InputSize, scale: 2f, shift: 0f);
            string weights = Path.Combine(_directory, model + ".safetensors");
            string inputPath = Path.Combine(_directory, model + ".input.bin");
            string outputPath = Path.Combine(_directory, model + ".torch-output.bin");
            string statePath = Path.Combine(_directory, model + ".torch-state.json");
            net.Save(weights);
            File.WriteAllBytes(inputPath, MemoryMarshal.AsBytes(input.AsSpan()).ToArray());

            string log = PyTorch.RunInterop("forward", model, weights, inputPath, batch.ToString(CultureInfo.InvariantCulture), outputPath, statePath);

            // Every tensor torch ended up with equals the network's, bit for bit (names, shapes, dtypes, values).
            CompareState(net, statePath, log);

            float[] expected = ReadFloats(outputPath);
            Assert.True(expected.Length == batch * net.OutputSize, $"torch wrote {expected.Length} floats, expected {batch * net.OutputSize}:\n{log}");
            float[] actual = new float[batch * net.OutputSize];
            net.Forward(input, actual);
            AssertClose(expected, actual, $"{model}: Forward vs. torch on a file saved by the network");
        }

        [TorchTheory]
        [InlineData("lenet5", 1)]
        [InlineData("bnnet", 2)]
        [InlineData("miscnet", 3)]
        public void TorchStateDictLoadsIntoTheNetworkAndComputesTheSameOutput(string model, int seed)
        {
            const int batch = 6;
            string weights = Path.Combine(_directory, model + ".torch.safetensors");
            string inputPath = Path.Combine(_directory, model + ".torch-input.bin");
            string outputPath = Path.Combine(_directory, model + ".torch-output.bin");
            string statePath = Path.Combine(_directory, model + ".torch-state.json");
            string log = PyTorch.RunInterop("export", model, seed.ToString(CultureInfo.InvariantCulture), batch.ToString(CultureInfo.InvariantCulture),
                                            weights, inputPath, outputPath, statePath);

            INetwork net = Create(model, seed: 99);
            net.Load(weights);

            // Parameters, Buffers (running statistics) and Counters (num_batches_tracked) equal torch's, bit for bit.
            CompareState(net, statePath, log);
            if (model == "bnnet")
            {
                Assert.Equal(3, net.Counters.Length);
                Assert.All(net.Counters.ToArray(), c => Assert.Equal(3L, c));
                Assert.Contains(net.Buffers.ToArray(), v => v != 0f && v != 1f);
            }

            float[] input = ReadFloats(inputPath);
            Assert.Equal(batch * net.InputSize, input.Length);
            float[] expected = ReadFloats(outputPath);
            Assert.Equal(batch * net.OutputSize, expected.Length);
            float[] actual = new float[batch * net.OutputSize];
            net.Forward(input, actual);
            AssertClose(expected, actual, $"{model}: Forward after loading torch's state_dict vs. torch");

            // And back: the loaded network saves a file that torch loads to the same values.
            string again = Path.Combine(_directory, model + ".again.safetensors");
            net.Save(again);
            string againOutput = Path.Combine(_directory, model + ".again-output.bin");
            string againState = Path.Combine(_directory, model + ".again-state.json");
            string againLog = PyTorch.RunInterop("forward", model, again, inputPath, batch.ToString(CultureInfo.InvariantCulture), againOutput, againState);
            CompareState(net, againState, againLog);
            Assert.Equal(expected, ReadFloats(againOutput));
        }

        // ---------------------------------------------------------------------------------------------

        private static bool IsBatchNorm(INetwork net, string name)
        {
            int dot = name.LastIndexOf('.');
            string prefix = name[..(dot + 1)];
            return net.Tensors.Any(t => t.Name == prefix + "running_mean");
        }

        private static float[] RandomFloats(Random random, int count, float scale, float shift)
        {
            var values = new float[count];
            for (int i = 0; i < count; i++)
                values[i] = (float)(random.NextDouble() * 2 - 1) * scale + shift;
            return values;
        }

        private static float[] ReadFloats(string path) => MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(path)).ToArray();

        /// <summary>
        /// Compares the state torch dumped as JSON ({name: {dtype, shape, values}}) with the network's tensors:
        /// the same names, shapes and dtypes (F32 for parameters and buffers, I64 for counters), and equal values.
        /// </summary>
        private static void CompareState(INetwork net, string statePath, string log)
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(statePath));
            var torchNames = document.RootElement.EnumerateObject().Select(p => p.Name).ToList();
            Assert.True(torchNames.OrderBy(n => n, StringComparer.Ordinal).SequenceEqual(net.Tensors.Select(t => t.Name).OrderBy(n => n, StringComparer.Ordinal)),
                $"torch's state_dict keys [{string.Join(", ", torchNames)}] differ from the network's tensors [{string.Join(", ", net.Tensors.Select(t => t.Name))}]\n{log}");

            foreach (TensorInfo tensor in net.Tensors)
            {
                JsonElement entry = document.RootElement.GetProperty(tensor.Name);
                int[] shape = entry.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                Assert.True(shape.SequenceEqual(tensor.Shape), $"{tensor.Name}: torch shape [{string.Join(", ", shape)}], network [{string.Join(", ", tensor.Shape)}]");
                string dtype = entry.GetProperty("dtype").GetString()!;
                Assert.Equal(tensor.Kind == TensorKind.Counter ? "I64" : "F32", dtype);
                JsonElement[] values = entry.GetProperty("values").EnumerateArray().ToArray();
                Assert.Equal(tensor.Length, values.Length);
                for (int i = 0; i < tensor.Length; i++)
                {
                    switch (tensor.Kind)
                    {
                        case TensorKind.Counter:
                            Assert.True(values[i].GetInt64() == net.Counters[tensor.Offset + i],
                                $"{tensor.Name}[{i}]: torch {values[i].GetInt64()}, network {net.Counters[tensor.Offset + i]}");
                            break;
                        default:
                            float torchValue = (float)values[i].GetDouble();
                            float mine = (tensor.Kind == TensorKind.Parameter ? net.Parameters : net.Buffers)[tensor.Offset + i];
                            Assert.True(BitConverter.SingleToInt32Bits(torchValue) == BitConverter.SingleToInt32Bits(mine),
                                $"{tensor.Name}[{i}] ({tensor.Kind}): torch {torchValue:R}, network {mine:R}");
                            break;
                    }
                }
            }
        }

        /// <summary>Every element within 1e-4 relative to the largest magnitude of the expected output.</summary>
        private static void AssertClose(float[] expected, float[] actual, string what)
        {
            Assert.Equal(expected.Length, actual.Length);
            Assert.All(actual, v => Assert.True(float.IsFinite(v), $"{what}: non-finite output {v}"));
            float scale = Math.Max(expected.Max(MathF.Abs), 1e-6f);
            int worst = 0;
            float worstError = -1;
            for (int i = 0; i < expected.Length; i++)
            {
                float error = MathF.Abs(expected[i] - actual[i]);
                if (error > worstError) { worstError = error; worst = i; }
            }
            Assert.True(worstError <= 1e-4f * scale,
                $"{what}: element {worst} is {actual[worst]:R}, torch says {expected[worst]:R} (error {worstError:G3}, " +
                $"tolerance {1e-4f * scale:G3}).\nexpected: {string.Join(", ", expected.Take(12).Select(v => v.ToString("G6", CultureInfo.InvariantCulture)))}\n" +
                $"actual:   {string.Join(", ", actual.Take(12).Select(v => v.ToString("G6", CultureInfo.InvariantCulture)))}");
        }
    }
}
