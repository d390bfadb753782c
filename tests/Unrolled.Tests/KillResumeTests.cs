using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Unrolled.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace Unrolled.Tests;

/// <summary>
/// The network of the kill test: about 530,000 parameters, so that a full checkpoint (weights, Adam's moments,
/// EarlyStopping's best weights) is some 10 MB and takes long enough to write to be killed in the middle;
/// batch norm gives it buffers and a counter to restore too.
/// </summary>
[Network(1, 16, 16)]
[Conv2D(8, 3, Padding = 1)]
[BatchNorm]
[ReLU]
[MaxPool2D(2)]
[Dense(1024, Activation = Activation.ReLU)]
[Dense(3)]
public partial class KillResumeNet;

/// <summary>
/// The training run of the kill test, shared by the child process (compiled by <see cref="KillResumeTests"/> as a
/// two-line program calling <see cref="Run"/>) and by the uninterrupted run in the test process.
/// </summary>
public static class KillResumeRun
{
    public const int Epochs = 5, Samples = 300, BatchSize = 20;
    public const string CheckpointName = "run.safetensors", FinalName = "final.safetensors", HistoryName = "history.json", DataName = "data.bin";

    /// <summary>n noisy 16×16 images; class c has the rows 5c to 5c + 4 bright.</summary>
    public static (float[] X, int[] Y) Data()
    {
        var random = new Random(77);
        var x = new float[Samples * 256];
        var y = new int[Samples];
        for (int i = 0; i < Samples; i++)
        {
            int label = random.Next(3);
            y[i] = label;
            for (int r = 0; r < 16; r++)
            {
                for (int c = 0; c < 16; c++)
                    x[i * 256 + r * 16 + c] = (float)(random.NextDouble() * 0.6 + (r / 5 == label ? 0.5 : 0));
            }
        }

        return (x, y);
    }

    public static FitOptions Options(string checkpoint, IProgress<BatchProgress>? batches, IProgress<EpochRecord>? epochs) => new()
    {
        Epochs = Epochs,
        BatchSize = BatchSize,
        Optimizer = Optimizer.Adam(2e-3f),
        ValidationSplit = 0.2,
        Seed = 5,
        BatchProgress = batches,
        EpochProgress = epochs,
        Callbacks = new FitCallback[]
        {
            new ModelCheckpoint(checkpoint, weightsOnly: false),
            // Counters that must survive the resume: a huge minDelta makes the rate halve after epochs 3 and 5.
            new ReduceLROnPlateau("loss", factor: 0.5, patience: 2, minDelta: 1e9),
            new EarlyStopping("val_loss", patience: 3, restoreBestWeights: true),
        },
    };

    public static KillResumeNet Network() => new(seed: 1) { MaxDegreeOfParallelism = 1 };

    /// <summary>
    /// The child: trains in <c>args[0]</c> on its data.bin, resuming from run.safetensors when it exists, printing
    /// "batch E B" after every batch and "epoch E" after every epoch (once its checkpoint is written), then saves the
    /// final weights and the history. With "--handshake" it waits after each of those lines for a line on stdin, so the
    /// parent decides, line by line, whether it goes on or is killed there (a tiny network trains faster than a signal
    /// lands otherwise).
    /// </summary>
    public static int Run(string[] args)
    {
        string directory = args[0];
        var (x, y) = ReadData(Path.Combine(directory, DataName));
        string checkpoint = Path.Combine(directory, CheckpointName);
        var net = Network();
        var out_ = Console.Out;
        bool handshake = args.Contains("--handshake");
        void Say(string line)
        {
            out_.WriteLine(line);
            out_.Flush();
            if (handshake && Console.In.ReadLine() is null)
                throw new InvalidOperationException("the parent closed stdin");
        }
        FitOptions options = Options(checkpoint,
            new Reporter<BatchProgress>(p => Say(string.Create(CultureInfo.InvariantCulture, $"batch {p.Epoch} {p.Batch}"))),
            new Reporter<EpochRecord>(r => Say(string.Create(CultureInfo.InvariantCulture, $"epoch {r.Epoch}"))));
        if (File.Exists(checkpoint))
        {
            options = options with { ResumeFrom = checkpoint };
            out_.WriteLine("resuming");
        }

        TrainingHistory history = net.Fit(x, y, options);
        net.Save(Path.Combine(directory, FinalName));
        history.SaveJson(Path.Combine(directory, HistoryName));
        out_.WriteLine("done");
        return 0;
    }

    public static void WriteData(string path, float[] x, int[] y)
    {
        using var writer = new BinaryWriter(File.Create(path));
        writer.Write(y.Length);
        foreach (float v in x)
            writer.Write(v);
        foreach (int v in y)
            writer.Write(v);
    }

    private static (float[] X, int[] Y) ReadData(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path));
        int n = reader.ReadInt32();
        var x = new float[n * KillResumeNet.InputSize];
        var y = new int[n];
        for (int i = 0; i < x.Length; i++)
            x[i] = reader.ReadSingle();
        for (int i = 0; i < n; i++)
            y[i] = reader.ReadInt32();
        return (x, y);
    }

    private sealed class Reporter<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}

/// <summary>
/// SIGKILL at several moments of a child process training with a full ModelCheckpoint every epoch, then a resume in a
/// fresh process: the checkpoint left is complete and loads, and the resumed run ends with every parameter, buffer,
/// counter and history value of the uninterrupted run.
/// </summary>
[Trait("Category", "Slow")]
public sealed class KillResumeTests : IDisposable, IClassFixture<KillResumeTests.Shared>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    /// <summary>The compiled child and the uninterrupted run, made once for the class; the child's folder is removed after it.</summary>
    public sealed class Shared : IDisposable
    {
        private readonly Lazy<string> _child = new(BuildChild);
        private readonly Lazy<(KillResumeNet Net, TrainingHistory History, string Directory)> _uninterrupted = new(TrainUninterrupted);

        public string ChildDirectory => _child.Value;

        /// <summary>The uninterrupted run's network and history, and the folder of its checkpoint of each epoch.</summary>
        public (KillResumeNet Net, TrainingHistory History, string Directory) Uninterrupted => _uninterrupted.Value;

        /// <summary>The uninterrupted run's checkpoint after <paramref name="epoch"/>.</summary>
        public string ReferenceCheckpoint(int epoch) => Path.Combine(Uninterrupted.Directory, $"reference-{epoch}.safetensors");

        public void Dispose()
        {
            if (_child.IsValueCreated)
                Directory.Delete(_child.Value, recursive: true);
            if (_uninterrupted.IsValueCreated)
                Directory.Delete(_uninterrupted.Value.Directory, recursive: true);
        }
    }

    private readonly Shared _shared;
    private readonly ITestOutputHelper _output;
    private readonly string _directory = Directory.CreateTempSubdirectory("unrolled-kill-").FullName;

    public KillResumeTests(Shared shared, ITestOutputHelper output)
    {
        _shared = shared;
        _output = output;
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>The run the killed ones must end as, trained in this process, keeping its checkpoint of every epoch.</summary>
    private static (KillResumeNet, TrainingHistory, string) TrainUninterrupted()
    {
        var (x, y) = KillResumeRun.Data();
        string directory = Directory.CreateTempSubdirectory("unrolled-kill-reference-").FullName;
        var net = KillResumeRun.Network();
        TrainingHistory history = net.Fit(x, y, KillResumeRun.Options(Path.Combine(directory, "reference-{epoch}.safetensors"), null, null));
        return (net, history, directory);
    }

    /// <summary>
    /// Compiles the child, a program whose Main calls <see cref="KillResumeRun.Run"/>, into a folder beside links to
    /// the test assembly and its dependencies, with the test host's runtimeconfig: `dotnet exec` runs it without a build.
    /// </summary>
    private static string BuildChild()
    {
        string directory = Directory.CreateTempSubdirectory("unrolled-kill-child-").FullName;
        string source = "public static class ChildProgram { public static int Main(string[] args) => Unrolled.Tests.KillResumeRun.Run(args); }";
        var references = ((string?)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append(typeof(INetwork).Assembly.Location)
            .Append(typeof(KillResumeRun).Assembly.Location)
            .Distinct(StringComparer.Ordinal)
            .GroupBy(Path.GetFileName, StringComparer.OrdinalIgnoreCase)
            .Select(g => (MetadataReference)MetadataReference.CreateFromFile(g.First()));
        var compilation = CSharpCompilation.Create("KillResumeChild",
            new[] { CSharpSyntaxTree.ParseText(source) }, references,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, optimizationLevel: OptimizationLevel.Release));
        var emitted = compilation.Emit(Path.Combine(directory, "KillResumeChild.dll"));
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics));

        string bin = AppContext.BaseDirectory;
        foreach (string file in Directory.GetFiles(bin, "*.dll"))
            File.CreateSymbolicLink(Path.Combine(directory, Path.GetFileName(file)), file);
        File.Copy(Path.Combine(bin, "Unrolled.Tests.runtimeconfig.json"), Path.Combine(directory, "KillResumeChild.runtimeconfig.json"));
        return directory;
    }

    /// <summary>A running child whose stdout lines are kept and handed to <paramref name="onLine"/> as they come.</summary>
    private sealed class Child : IDisposable
    {
        private readonly List<string> _lines = new();
        private volatile bool _killed;
        public readonly Process Process;

        public Child(string childDirectory, string workDirectory, Action<Child, string>? onLine)
        {
            var start = new ProcessStartInfo(ChildProcess.Dotnet)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
                StandardOutputEncoding = Encoding.UTF8,
            };
            start.ArgumentList.Add("exec");
            start.ArgumentList.Add(Path.Combine(childDirectory, "KillResumeChild.dll"));
            start.ArgumentList.Add(workDirectory);
            start.ArgumentList.Add("--handshake");
            Process = Process.Start(start)!;
            Process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is null)
                    return;
                lock (_lines)
                    _lines.Add(e.Data);
                onLine?.Invoke(this, e.Data);
                // The child waits after each progress line: let it go on unless it was killed on that line.
                if (!_killed && (e.Data.StartsWith("batch ", StringComparison.Ordinal) || e.Data.StartsWith("epoch ", StringComparison.Ordinal)))
                {
                    try
                    {
                        Process.StandardInput.WriteLine("go");
                        Process.StandardInput.Flush();
                    }
                    catch (Exception ex) when (ex is IOException or InvalidOperationException)
                    {
                        // the child is gone
                    }
                }
            };
            Process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                    lock (_lines) _lines.Add("stderr: " + e.Data);
            };
            Process.BeginOutputReadLine();
            Process.BeginErrorReadLine();
        }

        public string Transcript
        {
            get { lock (_lines) return string.Join("\n", _lines); }
        }

        public string? LastLine(string prefix)
        {
            lock (_lines) return _lines.LastOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
        }

        /// <summary>SIGKILL (Process.Kill on Unix), once.</summary>
        public void Kill()
        {
            _killed = true;
            try
            {
                Process.Kill();
            }
            catch (InvalidOperationException)
            {
                // already gone
            }
        }

        public void WaitForExit()
        {
            if (!Process.WaitForExit(Timeout))
            {
                Kill();
                Assert.Fail($"the child did not end within {Timeout}:\n{Transcript}");
            }

            Process.WaitForExit();
        }

        public void Dispose() => Process.Dispose();
    }

    private string NewRun(string name)
    {
        string directory = Path.Combine(_directory, name);
        Directory.CreateDirectory(directory);
        var (x, y) = KillResumeRun.Data();
        KillResumeRun.WriteData(Path.Combine(directory, KillResumeRun.DataName), x, y);
        return directory;
    }

    private static string[] Temporaries(string directory) => Directory.GetFiles(directory, "." + KillResumeRun.CheckpointName + ".*.tmp");

    /// <summary>
    /// After the kill: the checkpoint (if one was written) is whole, loads, and is the uninterrupted run's of its epoch;
    /// a fresh process resumes from it and ends exactly as the uninterrupted run. Returns the checkpoint's epoch (0: none).
    /// </summary>
    private int CheckAndResume(string directory, Child killed, string point)
    {
        killed.WaitForExit();
        Assert.True(killed.Process.ExitCode != 0, $"{point}: the child was not killed (exit {killed.Process.ExitCode}):\n{killed.Transcript}");
        Assert.False(File.Exists(Path.Combine(directory, KillResumeRun.FinalName)), $"{point}: the killed child finished:\n{killed.Transcript}");

        string checkpoint = Path.Combine(directory, KillResumeRun.CheckpointName);
        int epoch = 0;
        if (File.Exists(checkpoint))
        {
            var metadata = Checkpoint.ReadMetadata(checkpoint);
            epoch = int.Parse(metadata[Checkpoint.Prefix + "epoch"], CultureInfo.InvariantCulture);
            var loaded = new KillResumeNet();
            loaded.Load(checkpoint); // every tensor present, sized and finite, or it throws
            Assert.InRange(epoch, 1, KillResumeRun.Epochs - 1);

            // It is the uninterrupted run's checkpoint of that epoch: the same tensors and the same state (optimizer
            // moments, shuffle state, callbacks' counters and best weights), only the measured times differ.
            string expectedPath = _shared.ReferenceCheckpoint(epoch);
            var expected = new KillResumeNet();
            expected.Load(expectedPath);
            Assert.True(expected.Parameters.SequenceEqual(loaded.Parameters) && expected.Buffers.SequenceEqual(loaded.Buffers)
                        && expected.Counters.SequenceEqual(loaded.Counters), $"{point}: the checkpoint's tensors are not the uninterrupted run's of epoch {epoch}");
            var expectedMetadata = Checkpoint.ReadMetadata(expectedPath);
            string historyKey = Checkpoint.Prefix + "history";
            Assert.Equal(expectedMetadata.Keys.Order(StringComparer.Ordinal), metadata.Keys.Order(StringComparer.Ordinal));
            foreach (var (key, value) in expectedMetadata)
            {
                if (key != historyKey)
                    Assert.True(value == metadata[key], $"{point}: metadata '{key}' differs from the uninterrupted run's of epoch {epoch}");
            }

            static IEnumerable<(int, double, double, double, double, float)> Measured(string json) =>
                TrainingHistory.FromJson(json).Epochs.Select(e => (e.Epoch, e.Loss, e.Accuracy, e.ValidationLoss, e.ValidationAccuracy, e.LearningRate));
            Assert.Equal(Measured(expectedMetadata[historyKey]), Measured(metadata[historyKey]));
        }

        using (var resumed = new Child(_shared.ChildDirectory, directory, null))
        {
            resumed.WaitForExit();
            Assert.True(resumed.Process.ExitCode == 0, $"{point}: the resumed child failed:\n{resumed.Transcript}");
            Assert.Equal(epoch > 0 ? "resuming" : "batch 1 1", resumed.Transcript.Split('\n')[0]);
        }

        var (reference, history, _) = _shared.Uninterrupted;
        var final = new KillResumeNet();
        final.Load(Path.Combine(directory, KillResumeRun.FinalName));
        Assert.True(reference.Parameters.SequenceEqual(final.Parameters), $"{point}: the resumed parameters differ from the uninterrupted run's");
        Assert.True(reference.Buffers.SequenceEqual(final.Buffers), $"{point}: the resumed buffers differ");
        Assert.True(reference.Counters.SequenceEqual(final.Counters), $"{point}: the resumed counters differ");
        TrainingHistory resumedHistory = TrainingHistory.FromJson(File.ReadAllText(Path.Combine(directory, KillResumeRun.HistoryName)));
        Assert.Equal(history.Epochs.Select(e => (e.Epoch, e.Loss, e.Accuracy, e.ValidationLoss, e.ValidationAccuracy, e.LearningRate)),
            resumedHistory.Epochs.Select(e => (e.Epoch, e.Loss, e.Accuracy, e.ValidationLoss, e.ValidationAccuracy, e.LearningRate)));
        _output.WriteLine($"{point}: killed with the checkpoint of epoch {epoch} on disk, {Temporaries(directory).Length} temp file(s) left; resumed run identical");
        return epoch;
    }

    [Fact]
    public void Killed_in_the_third_epoch_resumes_bit_for_bit()
    {
        string directory = NewRun("epoch3");
        using var child = new Child(_shared.ChildDirectory, directory, (c, line) =>
        {
            if (line == "batch 3 6")
                c.Kill();
        });
        // The child may run on for a few batches before the signal lands, but not through the 6 left in the epoch.
        Assert.Equal(2, CheckAndResume(directory, child, "in epoch 3, batch 6"));
    }

    [Fact]
    public void Killed_just_after_a_checkpoint_resumes_bit_for_bit()
    {
        string directory = NewRun("after");
        using var child = new Child(_shared.ChildDirectory, directory, (c, line) =>
        {
            if (line == "epoch 2")
                c.Kill();
        });
        Assert.InRange(CheckAndResume(directory, child, "just after the checkpoint of epoch 2"), 2, 3);
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    public void Killed_at_a_random_batch_resumes_bit_for_bit(int seed)
    {
        var random = new Random(seed);
        int epoch = random.Next(1, KillResumeRun.Epochs + 1);
        int batch = random.Next(1, (int)(KillResumeRun.Samples * 0.8) / KillResumeRun.BatchSize + 1);
        string directory = NewRun($"random-{seed}");
        using var child = new Child(_shared.ChildDirectory, directory, (c, line) =>
        {
            if (line == $"batch {epoch} {batch}")
                c.Kill();
        });
        int saved = CheckAndResume(directory, child, $"at random in epoch {epoch}, batch {batch}");
        Assert.InRange(saved, epoch - 1, epoch);
    }

    /// <summary>
    /// Watches the folder for the temp file of a checkpoint write (after the first checkpoint exists) and kills the child
    /// the moment it appears; a temp file left after the kill proves the kill fell inside the write. A few tries, since
    /// the write can win the race.
    /// </summary>
    [Fact]
    public void Killed_while_writing_a_checkpoint_keeps_the_previous_one_and_resumes_bit_for_bit()
    {
        var outcomes = new List<string>();
        for (int attempt = 1; attempt <= 4; attempt++)
        {
            string directory = NewRun($"writing-{attempt}");
            string checkpoint = Path.Combine(directory, KillResumeRun.CheckpointName);
            using var child = new Child(_shared.ChildDirectory, directory, null);
            var clock = Stopwatch.StartNew();
            bool seen = false;
            while (!child.Process.HasExited && clock.Elapsed < Timeout)
            {
                if (File.Exists(checkpoint) && Temporaries(directory).Length > 0)
                {
                    child.Kill();
                    seen = true;
                    break;
                }

                Thread.SpinWait(50);
            }

            Assert.True(seen, $"no checkpoint write was seen:\n{child.Transcript}");
            child.WaitForExit();
            string[] left = Temporaries(directory);
            // "epoch N" is printed once N's checkpoint is written, so the write killed is that of the epoch after.
            int done = child.LastLine("epoch ") is string last ? int.Parse(last["epoch ".Length..], CultureInfo.InvariantCulture) : 0;
            string writing = $"the checkpoint write of epoch {done + 1}";
            if (left.Length == 0)
            {
                // The rename won the race: still a kill just after a checkpoint, checked as such.
                CheckAndResume(directory, child, $"attempt {attempt}: after {writing} (the write finished first)");
                outcomes.Add("after");
                continue;
            }

            long partial = new FileInfo(left[0]).Length, whole = new FileInfo(checkpoint).Length;
            int epoch = CheckAndResume(directory, child,
                $"attempt {attempt}: inside {writing} (before its rename), {partial:N0} bytes of the temp file on disk, the previous checkpoint {whole:N0}");
            Assert.True(epoch >= 1);
            outcomes.Add("inside");
            break;
        }

        _output.WriteLine(string.Join(", ", outcomes));
        Assert.Contains("inside", outcomes);
    }
}
