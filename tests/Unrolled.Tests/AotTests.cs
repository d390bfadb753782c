using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Numerics.Tensors;
using System.Text;
using System.Text.RegularExpressions;
using Xunit;
using Xunit.Abstractions;
using Unrolled.Tests.Harness;

namespace Unrolled.Tests.Aot;

/// <summary>The same declaration as examples/FashionMnist/Networks.cs's LeNet5, so its weight files load there.</summary>
[Network(1, 28, 28)]
[Conv2D(6, 5, Padding = 2, Activation = Activation.ReLU)]
[MaxPool2D(2)]
[Conv2D(16, 5, Activation = Activation.ReLU)]
[MaxPool2D(2)]
[Dense(120, Activation = Activation.ReLU)]
[Dense(84, Activation = Activation.ReLU)]
[Dense(10)]
public partial class AotLeNet5;

/// <summary>
/// Run alone: the test changes <see cref="Kernels.MaxVectorBits"/> (process-wide) for one evaluation,
/// and the publish and the timed run should not compete with other tests for the cores.
/// </summary>
[CollectionDefinition(nameof(AotCollection), DisableParallelization = true)]
public class AotCollection { }

/// <summary>
/// Trains LeNet-5 in-process, saves it, publishes examples/FashionMnist with NativeAOT and checks that the
/// native binary loads the file and reports the same test accuracy as the library did in-process.
/// </summary>
[Collection(nameof(AotCollection))]
[Trait("Category", "Slow")]
public class AotTests : IDisposable
{
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(3);
    private const int TrainingSteps = 300;
    private const int BatchSize = 64;
    private const int EvaluationChunk = 500; // as Program.Evaluate

    private readonly ITestOutputHelper _output;
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "unrolled-aot-" + Guid.NewGuid().ToString("N"));

    public AotTests(ITestOutputHelper output)
    {
        _output = output;
        Directory.CreateDirectory(_directory);
    }

    public void Dispose()
    {
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    [Fact]
    public void NativeAotExampleEvaluatesWeightsSavedInProcessToTheSameAccuracy()
    {
        string repository = ChildProcess.RepositoryRoot();
        string data = Path.Combine(repository, "examples", "data", "fashion-mnist");
        string weights = Path.Combine(_directory, "lenet5.safetensors");

        // (a) Train in-process: 300 Adam steps of 64 shuffled training images, enough for a meaningful accuracy.
        var (train, test) = FashionMnist.Load(data);
        var net = new AotLeNet5(seed: 1);
        var optimizer = Optimizer.Adam(0.003f);
        var random = new Random(1);
        int[] order = Enumerable.Range(0, train.Count).ToArray();
        random.Shuffle(order);
        var x = new float[BatchSize * train.SampleSize];
        var y = new int[BatchSize];
        var losses = new List<float>();
        for (int step = 0; step < TrainingSteps; step++)
        {
            for (int b = 0; b < BatchSize; b++)
            {
                int index = order[(step * BatchSize + b) % order.Length];
                train.Image(index).CopyTo(x.AsSpan(b * train.SampleSize, train.SampleSize));
                y[b] = train.Labels[index];
            }
            float loss = net.TrainStep(x, y, optimizer);
            Assert.True(float.IsFinite(loss), $"training diverged at step {step + 1}: loss {loss}");
            losses.Add(loss);
        }
        net.Save(weights);

        // The binary evaluates a fresh network loaded from the file; so does the test.
        var loaded = new AotLeNet5(seed: 2) { MaxDegreeOfParallelism = 1 };
        loaded.Load(weights);
        Assert.True(loaded.Parameters.SequenceEqual(net.Parameters), "the weights read back differ from those saved");

        string defaultPath = Kernels.ActivePath;
        double accuracy = Accuracy(loaded, test);
        _output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"in-process: {TrainingSteps} Adam steps (lr 0.003) of {BatchSize}, loss {losses.Take(10).Average():F3} -> {losses.TakeLast(10).Average():F3}, " +
            $"test accuracy {accuracy * 100:F2}% ({defaultPath})"));
        Assert.True(accuracy is > 0.65 and < 0.95,
            string.Create(CultureInfo.InvariantCulture, $"after {TrainingSteps} steps the test accuracy is {accuracy * 100:F2}%, not a meaningful 65-95 %"));

        // (b) Publish the example with NativeAOT. The native intermediate and output folders are fresh, so the
        // compiler really runs (its step is incremental and an up-to-date step would print no warnings) and the
        // repository's native folders are left alone.
        string publish = Path.Combine(_directory, "publish");
        var published = ChildProcess.Run(ChildProcess.Dotnet, repository, PublishTimeout, cleanDotnetEnvironment: true, null,
            "publish", Path.Combine(repository, "examples", "FashionMnist", "FashionMnist.csproj"),
            "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true", "-o", publish,
            $"-p:NativeIntermediateOutputPath={Path.Combine(_directory, "ilc")}{Path.DirectorySeparatorChar}",
            $"-p:NativeOutputPath={Path.Combine(_directory, "native")}{Path.DirectorySeparatorChar}",
            "--nologo", "--disable-build-servers");
        Assert.True(published.ExitCode == 0, $"dotnet publish exited with {published.ExitCode}:\n{published.Transcript}");
        string[] warnings = Lines(published.Stdout + "\n" + published.Stderr)
            .Where(l => l.Contains("warning IL", StringComparison.OrdinalIgnoreCase) || l.Contains("warning AOT", StringComparison.OrdinalIgnoreCase))
            .Distinct().ToArray();
        Assert.True(warnings.Length == 0, $"the NativeAOT publish has {warnings.Length} trim/AOT warnings:\n{string.Join("\n", warnings)}\n\n{published.Transcript}");

        Assert.True(File.Exists(Path.Combine(_directory, "ilc", "FashionMnist.o")),
            $"the native compiler did not run into the fresh intermediate folder, so its warnings were not checked:\n{published.Transcript}");

        string binary = Path.Combine(publish, "FashionMnist");
        string listing = Directory.Exists(publish) ? string.Join(", ", Directory.GetFiles(publish).Select(Path.GetFileName)) : "(no folder)";
        Assert.True(File.Exists(binary), $"{binary} was not produced; the publish folder has [{listing}]:\n{published.Transcript}");
        Assert.False(File.Exists(Path.Combine(publish, "FashionMnist.dll")),
            $"the publish folder holds FashionMnist.dll: this is not a NativeAOT publish. [{listing}]");
        byte[] magic = new byte[4];
        using (var stream = File.OpenRead(binary)) stream.ReadExactly(magic);
        Assert.True(magic.SequenceEqual(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F' }), $"{binary} is not an ELF executable");
        long size = new FileInfo(binary).Length;

        // (c) Evaluate the saved weights with the native binary. --data is given because the binary, outside the
        // repository, cannot find the shipped data set by walking up from its own folder.
        var evaluated = ChildProcess.Run(binary, _directory, RunTimeout, cleanDotnetEnvironment: false, null,
            "--epochs", "0", "--load", weights, "--threads", "1", "--data", data);
        Assert.True(evaluated.ExitCode == 0, $"the binary exited with {evaluated.ExitCode}:\n{evaluated.Transcript}");
        string[] lines = Lines(evaluated.Stdout);
        Assert.True(lines.Length > 0, $"the binary printed nothing:\n{evaluated.Transcript}");
        Match reported = Regex.Match(lines[^1], @"^test accuracy: (\d+\.\d\d)%$");
        Assert.True(reported.Success, $"the last line is not 'test accuracy: NN.NN%':\n{evaluated.Transcript}");
        Assert.Contains(lines, l => l == $"Loaded weights from {weights}");

        // The binary is compiled for one instruction set and its kernels may take a narrower path than the JIT does
        // here; the paths agree only to rounding, which can flip a borderline argmax. Compare on the binary's path.
        Match kernels = lines.Select(l => Regex.Match(l, @"^Kernels: (Vector(512|256|128)), threads: 1$")).FirstOrDefault(m => m.Success)
                        ?? Match.Empty;
        Assert.True(kernels.Success, $"the binary did not print 'Kernels: VectorN, threads: 1':\n{evaluated.Transcript}");
        string binaryPath = kernels.Groups[1].Value;
        double matched = accuracy;
        if (binaryPath != defaultPath)
        {
            using (VectorWidth.Limit(int.Parse(kernels.Groups[2].Value, CultureInfo.InvariantCulture)))
            {
                Assert.Equal(binaryPath, Kernels.ActivePath);
                matched = Accuracy(loaded, test);
            }
            _output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"in-process on the binary's path {binaryPath}: {matched * 100:F2}% (default path {defaultPath}: {accuracy * 100:F2}%)"));
        }
        string expected = (matched * 100).ToString("F2", CultureInfo.InvariantCulture);
        Assert.True(reported.Groups[1].Value == expected,
            $"the binary reports {reported.Groups[1].Value}% on {binaryPath}, the library in-process {expected}% on the same path:\n{evaluated.Transcript}");

        _output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"aot binary {size / 1e6:F1} MB ({size:N0} bytes), evaluate {test.Count:N0} images in {evaluated.Elapsed.TotalSeconds:F2} s " +
            $"(process start to exit, --threads 1, {binaryPath}, data loading included); binary reports {reported.Groups[1].Value}%, " +
            $"publish took {published.Elapsed.TotalSeconds:F0} s"));

        // (d) A weight file that does not exist: a non-zero exit and one clear line on stderr, no stack trace.
        string missing = Path.Combine(_directory, "does-not-exist.safetensors");
        var failed = ChildProcess.Run(binary, _directory, RunTimeout, cleanDotnetEnvironment: false, null,
            "--epochs", "0", "--load", missing, "--threads", "1", "--data", data);
        Assert.True(failed.ExitCode != 0, $"the binary exited with 0 for a missing weight file:\n{failed.Transcript}");
        string[] errors = Lines(failed.Stderr);
        Assert.True(errors.Length >= 1 && errors[0].StartsWith("error: ", StringComparison.Ordinal) && errors[0].Contains(missing, StringComparison.Ordinal),
            $"stderr does not start with an 'error: ' line naming {missing}:\n{failed.Transcript}");
        Assert.False(errors.Any(l => Regex.IsMatch(l, @"^\s+at\s") || l.Contains("Unhandled exception", StringComparison.OrdinalIgnoreCase)
                                     || Regex.IsMatch(l, @"\b[A-Z]\w*Exception\b")),
            $"stderr shows an exception or a stack trace:\n{failed.Transcript}");
        Assert.DoesNotContain("test accuracy", failed.Stdout);
        _output.WriteLine($"missing weight file: exit {failed.ExitCode}, stderr: {errors[0]}");
    }

    /// <summary>The fraction of <paramref name="set"/> classified correctly, computed as the example's Program.Evaluate does.</summary>
    private static double Accuracy(INetwork net, LabeledImages set)
    {
        int count = set.Count, size = set.SampleSize, classes = net.OutputSize, correct = 0;
        var output = new float[EvaluationChunk * classes];
        for (int start = 0; start < count; start += EvaluationChunk)
        {
            int m = Math.Min(EvaluationChunk, count - start);
            net.Forward(set.Images.AsSpan(start * size, m * size), output.AsSpan(0, m * classes));
            for (int b = 0; b < m; b++)
                if (TensorPrimitives.IndexOfMax<float>(output.AsSpan(b * classes, classes)) == set.Labels[start + b]) correct++;
        }
        return correct / (double)count;
    }

    private static string[] Lines(string text) =>
        text.Replace("\r", "").Split('\n').Select(l => l.TrimEnd()).Where(l => l.Length > 0).ToArray();
}
