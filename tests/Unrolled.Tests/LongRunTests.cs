using System;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Unrolled.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace Unrolled.Tests;

/// <summary>
/// Run alone: the example's build writes the library's and the generator's build folders (as the package and
/// NativeAOT tests do), and its training run should have the cores to itself.
/// </summary>
[CollectionDefinition(nameof(LongRunCollection), DisableParallelization = true)]
public class LongRunCollection { }

/// <summary>
/// Builds examples/FashionMnist and runs it as a user would: 20 epochs of the stronger network on a subset of
/// the data must not grow the process's memory, and a diverging run must stop with one clear message.
/// </summary>
[Collection(nameof(LongRunCollection))]
[Trait("Category", "Slow")]
public class LongRunTests(ITestOutputHelper output)
{
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(10);

    // The example's build, once for the class: the path of FashionMnist.dll.
    private static readonly Lazy<(string Dll, TimeSpan Elapsed)> s_example = new(BuildExample);

    private static (string Dll, TimeSpan Elapsed) BuildExample()
    {
        string repository = ChildProcess.RepositoryRoot();
        string project = Path.Combine(repository, "examples", "FashionMnist");
        var built = ChildProcess.Run(ChildProcess.Dotnet, repository, BuildTimeout, cleanDotnetEnvironment: true, null,
            "build", Path.Combine(project, "FashionMnist.csproj"), "-c", "Release", "--nologo", "--disable-build-servers");
        Assert.True(built.ExitCode == 0, $"building the example failed:\n{built.Transcript}");
        // bin/Release/<framework>/FashionMnist.dll: a runtime-specific folder below it (left by a NativeAOT publish,
        // as AotTests does) holds another build that is not this one.
        string[] dlls = Directory.GetDirectories(Path.Combine(project, "bin", "Release"))
            .Select(framework => Path.Combine(framework, "FashionMnist.dll")).Where(File.Exists).ToArray();
        Assert.True(dlls.Length == 1, $"expected one FashionMnist.dll in bin/Release/<framework>, found [{string.Join(", ", dlls)}]");
        return (dlls[0], built.Elapsed);
    }

    private static ProcessResult RunExample(params string[] arguments)
    {
        string repository = ChildProcess.RepositoryRoot();
        return ChildProcess.Run(ChildProcess.Dotnet, repository, RunTimeout, cleanDotnetEnvironment: true, null,
            new[] { s_example.Value.Dll }.Concat(arguments).ToArray());
    }

    private static readonly Regex s_memory = new(
        @"^memory after epoch (\d+): working set ([\d.]+) MB, managed heap ([\d.]+) MB, GC heap size ([\d.]+) MB, allocated ([\d.]+) MB$");
    private static readonly Regex s_epoch = new(@"^epoch (\d+): train loss ([\d.]+), .*test accuracy ([\d.]+)%");

    private sealed record Memory(int Epoch, double WorkingSet, double ManagedHeap, double GcHeapSize, double Allocated);

    [Fact]
    public void TwentyEpochsOfTheStrongerNetworkDoNotGrowTheProcessMemory()
    {
        const int Epochs = 20;
        // 1,024 training images (16 batches of 64) and 512 test images per epoch: every code path of a full epoch
        // (shuffling, training steps, the progress display, evaluation of both sets) 20 times, in about half a minute.
        var run = RunExample("--model", "fashionnet", "--epochs", Epochs.ToString(CultureInfo.InvariantCulture),
            "--train-limit", "1024", "--test-limit", "512");
        Assert.True(run.ExitCode == 0, $"the example exited with {run.ExitCode}:\n{run.Transcript}");

        string[] lines = run.Stdout.Replace("\r", "").Split('\n').Select(l => l.Trim()).ToArray();
        var memory = lines.Select(l => s_memory.Match(l)).Where(m => m.Success)
            .Select(m => new Memory(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
                Number(m.Groups[2]), Number(m.Groups[3]), Number(m.Groups[4]), Number(m.Groups[5])))
            .ToArray();
        var epochs = lines.Select(l => s_epoch.Match(l)).Where(m => m.Success)
            .Select(m => (Epoch: int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), TrainLoss: Number(m.Groups[2]), TestAccuracy: Number(m.Groups[3])))
            .ToArray();
        Assert.True(memory.Select(m => m.Epoch).SequenceEqual(Enumerable.Range(1, Epochs)),
            $"expected one memory line for each of epochs 1-{Epochs}:\n{run.Transcript}");
        Assert.True(epochs.Select(e => e.Epoch).SequenceEqual(Enumerable.Range(1, Epochs)),
            $"expected one result line for each of epochs 1-{Epochs}:\n{run.Transcript}");

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"build {s_example.Value.Elapsed.TotalSeconds:F0} s (once for the class), run {run.Elapsed.TotalSeconds:F0} s"));
        output.WriteLine(lines.FirstOrDefault(l => l.StartsWith("memory before training", StringComparison.Ordinal)) ?? "(no 'memory before training' line)");
        output.WriteLine("epoch  working set MB  managed heap MB  GC heap size MB  allocated MB  train loss  test accuracy %");
        foreach (var (m, e) in memory.Zip(epochs))
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{m.Epoch,5}  {m.WorkingSet,14:F2}  {m.ManagedHeap,15:F2}  {m.GcHeapSize,15:F2}  {m.Allocated,12:F2}  {e.TrainLoss,10:F4}  {e.TestAccuracy,15:F2}"));

        // The network trained (so the epochs really ran their steps).
        Assert.True(epochs[^1].TrainLoss < epochs[0].TrainLoss / 2 && epochs[^1].TestAccuracy > 70,
            $"after {Epochs} epochs the train loss is {epochs[^1].TrainLoss} (epoch 1: {epochs[0].TrainLoss}) and the test accuracy {epochs[^1].TestAccuracy}%");

        // Epoch 1 sizes the workspaces, compiles the code and fills the allocator's caches; from epoch 2 on nothing
        // may grow. Live managed objects (measured after a full collection) stay within 1 MB of epoch 2 ...
        Memory second = memory[1], last = memory[^1];
        Memory largestHeap = memory.Skip(1).MaxBy(m => m.ManagedHeap)!;
        Assert.True(largestHeap.ManagedHeap <= second.ManagedHeap + 1,
            $"the live managed heap grew from {second.ManagedHeap} MB after epoch 2 to {largestHeap.ManagedHeap} MB after epoch {largestHeap.Epoch}");
        // ... and the working set after the last epoch is at most 5 MB above its lowest from epoch 2 on (not epoch 2's
        // own: in the runs seen here the working set fell by about 50 MB after epoch 2 and stayed there).
        Memory lowest = memory.Skip(1).MinBy(m => m.WorkingSet)!;
        Assert.True(last.WorkingSet <= lowest.WorkingSet + 5,
            $"the working set grew from {lowest.WorkingSet} MB after epoch {lowest.Epoch} to {last.WorkingSet} MB after epoch {Epochs}");
    }

    [Fact]
    public void ADivergingRunStopsWithOneClearMessage()
    {
        // SGD with lr 10⁴ overflows within a few steps (step 5 of Fit's shuffle with seed 1: 1,024 images, 16 steps, leave room).
        var run = RunExample("--optimizer", "sgd", "--lr", "10000", "--epochs", "1", "--train-limit", "1024", "--test-limit", "64");
        Assert.True(run.ExitCode == 1, $"the example exited with {run.ExitCode}, not 1:\n{run.Transcript}");
        string[] errors = run.Stderr.Replace("\r", "").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(errors.Length == 1, $"expected one line on stderr:\n{run.Transcript}");
        Assert.Matches(@"^error: epoch 1, step \d+ of the run \(learning rate 1E\+04, --lr 1E\+04\): Training diverged: the loss is \S+", errors[0]);
        Assert.Contains("Try a smaller learning rate", errors[0]);
        Assert.DoesNotContain("Unhandled exception", run.Stderr);
        Assert.DoesNotContain("test accuracy:", run.Stdout);
        output.WriteLine(errors[0]);
    }

    private static double Number(Group group) => double.Parse(group.Value, CultureInfo.InvariantCulture);
}
