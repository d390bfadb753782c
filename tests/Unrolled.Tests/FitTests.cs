using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Unrolled.Data;
using Xunit;

namespace Unrolled.Tests;

/// <summary>A tiny classifier for the Fit, checkpoint and data tests: which third of a 6×6 image holds the bright column.</summary>
[Network(1, 6, 6)]
[Conv2D(4, 3, Padding = 1, Activation = Activation.ReLU)]
[MaxPool2D(2)]
[Dense(3)]
public partial class FitNet;

/// <summary>The same task with batch-norm (running statistics and a counter to checkpoint).</summary>
[Network(1, 6, 6)]
[Conv2D(4, 3, Padding = 1)]
[BatchNorm]
[ReLU]
[MaxPool2D(2)]
[Dense(3)]
public partial class FitBatchNormNet;

internal static class FitData
{
    /// <summary>n noisy 6×6 images; label c has columns 2c and 2c + 1 bright.</summary>
    public static (float[] X, int[] Y) Make(int n, int seed)
    {
        var random = new Random(seed);
        var x = new float[n * 36];
        var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            int label = random.Next(3);
            y[i] = label;
            for (int r = 0; r < 6; r++)
            {
                for (int c = 0; c < 6; c++)
                    x[i * 36 + r * 6 + c] = (float)(random.NextDouble() * 0.5 + (c / 2 == label ? 0.6 : 0));
            }
        }

        return (x, y);
    }
}

/// <summary>Records the parameters after every epoch, and the bytes this thread allocated from each epoch's start to its end.</summary>
internal sealed class Recorder(int epochs) : FitCallback
{
    public readonly List<float[]> Parameters = new();
    public readonly long[] Allocated = new long[epochs + 1];
    private long _start;

    public override void OnEpochBegin(FitContext context, int epoch) => _start = GC.GetAllocatedBytesForCurrentThread();

    public override void OnEpochEnd(FitContext context, EpochRecord record)
    {
        Allocated[record.Epoch] = GC.GetAllocatedBytesForCurrentThread() - _start;
        if (record.Epoch > 1)
            return; // keep the steady-state epochs free of the copy's allocation
        Parameters.Add(context.Network.Parameters.ToArray());
    }
}

internal sealed class ListProgress<T> : IProgress<T>
{
    public readonly List<T> Items = new();
    public void Report(T value) => Items.Add(value);
}

public sealed class FitTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("unrolled-fit-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Fit_learns_and_records_a_history_savable_as_csv_and_json()
    {
        var (x, y) = FitData.Make(300, 1);
        var net = new FitNet(seed: 1);
        var epochs = new ListProgress<EpochRecord>();
        var batches = new ListProgress<BatchProgress>();
        TrainingHistory history = net.Fit(x, y, new FitOptions
        {
            Epochs = 5,
            BatchSize = 20,
            Optimizer = Optimizer.Adam(1e-2f),
            Schedule = LearningRateSchedule.StepDecay(1e-2f, 2, 0.5f),
            ValidationSplit = 0.2,
            Seed = 3,
            EpochProgress = epochs,
            BatchProgress = batches,
        });

        Assert.Equal(5, history.Count);
        Assert.Equal(Enumerable.Range(1, 5), history.Epochs.Select(e => e.Epoch));
        Assert.True(history[4].Loss < history[0].Loss * 0.7, $"loss {history[0].Loss} → {history[4].Loss}");
        Assert.True(history[4].ValidationAccuracy > 0.9, $"validation accuracy {history[4].ValidationAccuracy}");
        Assert.InRange(history[4].Accuracy, 0.9, 1.0);
        Assert.All(history.Epochs, e => Assert.True(e.Seconds > 0 && e.ImagesPerSecond > 0 && double.IsFinite(e.ValidationLoss)));
        Assert.Equal(new[] { 1e-2f, 1e-2f, 5e-3f, 5e-3f, 2.5e-3f }, history.Epochs.Select(e => e.LearningRate));
        // 240 training samples (the last 60 are held out) in 12 batches of 20.
        Assert.Equal(5 * 12, batches.Items.Count);
        Assert.Equal(new BatchProgress(5, 12, 12, batches.Items[^1].Loss), batches.Items[^1]);
        Assert.Equal(history.Epochs, epochs.Items);
        Assert.Equal(history[4].ValidationAccuracy, net.Evaluate(x.AsSpan(240 * 36), y.AsSpan(240)), 6);

        string csvPath = Path.Combine(_directory, "history.csv"), jsonPath = Path.Combine(_directory, "history.json");
        history.SaveCsv(csvPath);
        history.SaveJson(jsonPath);
        string[] lines = File.ReadAllLines(csvPath);
        Assert.Equal(6, lines.Length);
        Assert.Equal(TrainingHistory.CsvHeader, lines[0]);
        string[] cells = lines[3].Split(',');
        Assert.Equal("3", cells[0]);
        Assert.Equal(history[2].Loss, double.Parse(cells[1], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("0.005", cells[5]);
        Assert.Equal(history.Epochs, TrainingHistory.FromJson(File.ReadAllText(jsonPath)).Epochs);
    }

    [Fact]
    public void Fit_is_deterministic_for_a_seed_and_the_seed_changes_the_shuffle()
    {
        var (x, y) = FitData.Make(120, 2);
        float[] Run(ulong seed)
        {
            var net = new FitNet(seed: 5);
            net.Fit(x, y, new FitOptions { Epochs = 2, BatchSize = 16, Optimizer = Optimizer.Sgd(0.05f, momentum: 0.9f), Seed = seed });
            return net.Parameters.ToArray();
        }

        Assert.Equal(Run(11), Run(11));
        Assert.NotEqual(Run(11), Run(12));
    }

    [Fact]
    public void Fit_with_validation_data_and_without_training_accuracy()
    {
        var (x, y) = FitData.Make(100, 3);
        var (vx, vy) = FitData.Make(50, 4);
        var net = new FitNet(seed: 2);
        TrainingHistory history = net.Fit(x, y, new FitOptions
        {
            Epochs = 2, BatchSize = 25, Optimizer = Optimizer.Adam(1e-2f), ValidationInputs = vx, ValidationLabels = vy,
            MeasureTrainingAccuracy = false,
        });
        Assert.True(double.IsNaN(history[1].Accuracy));
        var (loss, accuracy) = net.EvaluateLoss(vx, vy, batchSize: 7);
        Assert.Equal(history[1].ValidationLoss, loss, 9);
        Assert.Equal(history[1].ValidationAccuracy, accuracy, 12);
        Assert.Throws<ArgumentException>(() => net.Fit(x, y, new FitOptions { Optimizer = Optimizer.Adam(), ValidationInputs = vx, ValidationLabels = vy, ValidationSplit = 0.1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => net.Fit(x, y.Select(v => v + 3).ToArray(), new FitOptions { Optimizer = Optimizer.Adam() }));
    }

    [Fact]
    public void Steady_state_epochs_allocate_nothing()
    {
        var (x, y) = FitData.Make(200, 5);
        var net = new FitNet(seed: 3) { MaxDegreeOfParallelism = 1 };
        var recorder = new Recorder(4);
        net.Fit(x, y, new FitOptions
        {
            Epochs = 4, BatchSize = 20, Optimizer = Optimizer.AdamW(1e-3f), ValidationSplit = 0.2, ValidationBatchSize = 20,
            Callbacks = new FitCallback[] { recorder },
            Augmentation = new ImageAugmentation(1, 6, 6, padding: 1, seed: 9),
        });
        Assert.Equal(new long[] { 0, 0, 0 }, recorder.Allocated[2..]);
    }

    [Fact]
    public void EarlyStopping_stops_after_patience_epochs_without_improvement_and_restores_the_best_weights()
    {
        var (x, y) = FitData.Make(120, 6);
        var net = new FitNet(seed: 4);
        var recorder = new Recorder(10);
        // A huge minDelta: only the first epoch (against +∞) counts as an improvement.
        var stopping = new EarlyStopping("val_loss", patience: 2, minDelta: 1e9, restoreBestWeights: true);
        TrainingHistory history = net.Fit(x, y, new FitOptions
        {
            Epochs = 10, BatchSize = 20, Optimizer = Optimizer.Adam(1e-2f), ValidationSplit = 0.25,
            Callbacks = new FitCallback[] { recorder, stopping },
        });
        Assert.Equal(3, history.Count);
        Assert.Equal(3, stopping.StoppedEpoch);
        Assert.Equal(1, stopping.BestEpoch);
        Assert.Equal(recorder.Parameters[0], net.Parameters.ToArray());

        // Without restoring, the last epoch's weights stay; a real improvement resets the wait.
        var again = new FitNet(seed: 4);
        var plain = new EarlyStopping("val_loss", patience: 2, minDelta: 1e9);
        again.Fit(x, y, new FitOptions
        {
            Epochs = 10, BatchSize = 20, Optimizer = Optimizer.Adam(1e-2f), ValidationSplit = 0.25, Callbacks = new FitCallback[] { plain },
        });
        Assert.NotEqual(recorder.Parameters[0], again.Parameters.ToArray());
        var patient = new EarlyStopping("accuracy", patience: 3);
        TrainingHistory full = new FitNet(seed: 4).Fit(x, y, new FitOptions
        {
            Epochs = 4, BatchSize = 20, Optimizer = Optimizer.Adam(1e-2f), Callbacks = new FitCallback[] { patient },
        });
        Assert.True(patient.Maximize);
        Assert.Equal(4, full.Count);
        Assert.Equal(0, patient.StoppedEpoch);
        Assert.Throws<InvalidOperationException>(() => new FitNet().Fit(x, y, new FitOptions
        {
            Optimizer = Optimizer.Adam(), Callbacks = new FitCallback[] { new EarlyStopping("val_loss") },
        }));
    }

    [Fact]
    public void ReduceLROnPlateau_multiplies_the_rate_by_factor_after_patience_epochs_down_to_the_minimum()
    {
        var (x, y) = FitData.Make(100, 7);
        var reduce = new ReduceLROnPlateau("loss", factor: 0.5, patience: 1, minimum: 0.01f, minDelta: 1e9);
        TrainingHistory history = new FitNet(seed: 1).Fit(x, y, new FitOptions
        {
            Epochs = 6, BatchSize = 20, Optimizer = Optimizer.Sgd(0.1f), Callbacks = new FitCallback[] { reduce },
        });
        Assert.Equal(new[] { 0.1f, 0.1f, 0.05f, 0.025f, 0.0125f, 0.01f }, history.Epochs.Select(e => e.LearningRate));

        // With a schedule the reduction scales the scheduled rates; patience 2 waits two epochs.
        var slower = new ReduceLROnPlateau("loss", factor: 0.1, patience: 2, minDelta: 1e9);
        TrainingHistory scheduled = new FitNet(seed: 1).Fit(x, y, new FitOptions
        {
            Epochs = 5, BatchSize = 20, Optimizer = Optimizer.Sgd(1), Schedule = LearningRateSchedule.StepDecay(0.1f, 1, 0.5f),
            Callbacks = new FitCallback[] { slower },
        });
        float[] rates = scheduled.Epochs.Select(e => e.LearningRate).ToArray();
        Assert.Equal(new[] { 0.1f, 0.05f, 0.025f }, rates[..3]);
        Assert.Equal(0.0125 * 0.1, rates[3], 8);
        Assert.Equal(0.00625 * 0.1, rates[4], 8);
    }

    [Fact]
    public void ModelCheckpoint_writes_every_epoch_or_only_on_improvement()
    {
        var (x, y) = FitData.Make(100, 8);
        string every = Path.Combine(_directory, "every-{epoch}.safetensors");
        string best = Path.Combine(_directory, "best-{epoch}.safetensors");
        // Rate 0 and no shuffle: every epoch's loss is the first's, so only epoch 1 improves.
        var all = new ModelCheckpoint(every, monitor: "val_loss", weightsOnly: true);
        var onlyBest = new ModelCheckpoint(best, monitor: "val_loss", saveBestOnly: true, weightsOnly: true);
        var net = new FitNet(seed: 6);
        net.Fit(x, y, new FitOptions
        {
            Epochs = 3, BatchSize = 20, Optimizer = Optimizer.Sgd(0), Shuffle = false, ValidationSplit = 0.2,
            Callbacks = new FitCallback[] { all, onlyBest },
        });
        Assert.Equal(3, all.Saves);
        Assert.Equal(1, onlyBest.Saves);
        Assert.True(File.Exists(every.Replace("{epoch}", "3")));
        Assert.True(File.Exists(best.Replace("{epoch}", "1")));
        Assert.False(File.Exists(best.Replace("{epoch}", "2")));

        // While the validation loss improves, saveBestOnly writes; the file holds the best epoch's weights.
        string path = Path.Combine(_directory, "best.safetensors");
        var improving = new ModelCheckpoint(path, monitor: "val_accuracy", saveBestOnly: true, weightsOnly: true);
        var trained = new FitNet(seed: 6);
        TrainingHistory history = trained.Fit(x, y, new FitOptions
        {
            Epochs = 3, BatchSize = 10, Optimizer = Optimizer.Adam(1e-2f), ValidationSplit = 0.2, Callbacks = new FitCallback[] { improving },
        });
        int bestEpoch = 1 + Enumerable.Range(0, 3).OrderByDescending(i => history[i].ValidationAccuracy).ThenBy(i => i).First();
        int improvements = 0;
        double bestSoFar = double.NegativeInfinity;
        foreach (EpochRecord e in history.Epochs)
        {
            if (e.ValidationAccuracy > bestSoFar) { bestSoFar = e.ValidationAccuracy; improvements++; }
        }

        Assert.Equal(improvements, improving.Saves);
        var loaded = new FitNet();
        loaded.Load(path);
        if (bestEpoch == 3)
            Assert.Equal(trained.Parameters.ToArray(), loaded.Parameters.ToArray());
        Assert.Equal(history[bestEpoch - 1].ValidationAccuracy, loaded.Evaluate(x.AsSpan(80 * 36), y.AsSpan(80)), 6);
    }
}
