using System;
using System.IO;
using System.Linq;
using Unrolled.Data;
using Xunit;

namespace Unrolled.Tests;

/// <summary>A network with dropout between its layers, for the resume test.</summary>
[Network(1, 6, 6)]
[Conv2D(4, 3, Padding = 1, Activation = Activation.ReLU)]
[Dropout(0.5)]
[Dense(3)]
public partial class CheckpointDropoutNet;

public sealed class CheckpointTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("unrolled-checkpoint-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static FitOptions Options(int epochs, params FitCallback[] callbacks) => new()
    {
        Epochs = epochs,
        BatchSize = 16,
        Optimizer = Optimizer.AdamW(5e-3f),
        Schedule = LearningRateSchedule.Cosine(5e-3f, 4),
        ValidationSplit = 0.2,
        Seed = 42,
        Augmentation = new ImageAugmentation(1, 6, 6, padding: 1, seed: 7),
        Callbacks = callbacks,
    };

    [Fact]
    public void Resuming_from_a_checkpoint_continues_bit_for_bit()
        => ResumesBitForBit(seed => new FitBatchNormNet(seed));

    /// <summary>Dropout masks come from the network's seed and step count, which the checkpoint restores (the resumed
    /// network is created with another seed, and in a fresh process would have taken no steps).</summary>
    [Fact]
    public void Resuming_a_network_with_dropout_continues_bit_for_bit()
        => ResumesBitForBit(seed => new CheckpointDropoutNet(seed));

    private void ResumesBitForBit(Func<int, INetwork> create)
    {
        var (x, y) = FitData.Make(200, 11);

        INetwork straight = create(1);
        TrainingHistory full = straight.Fit(x, y, Options(4));

        string path = Path.Combine(_directory, "run.safetensors");
        INetwork first = create(1);
        first.Fit(x, y, Options(2, new ModelCheckpoint(path, weightsOnly: false)));

        // A fresh network (other initial weights, another seed, no steps taken) and a fresh optimizer.
        INetwork resumed = create(99);
        FitOptions options = Options(4) with { ResumeFrom = path, Optimizer = Optimizer.AdamW(1f) };
        TrainingHistory history = resumed.Fit(x, y, options);

        Assert.Equal(straight.Parameters.ToArray(), resumed.Parameters.ToArray());
        Assert.Equal(straight.Buffers.ToArray(), resumed.Buffers.ToArray());
        Assert.Equal(straight.Counters.ToArray(), resumed.Counters.ToArray());
        Assert.Equal(straight.RandomState, resumed.RandomState);
        Assert.Equal(full.Count, history.Count);
        for (int e = 0; e < 4; e++)
        {
            Assert.Equal(full[e].Loss, history[e].Loss);
            Assert.Equal(full[e].ValidationLoss, history[e].ValidationLoss);
            Assert.Equal(full[e].LearningRate, history[e].LearningRate);
        }

        Assert.Equal(Options(4).Optimizer.GetType(), options.Optimizer.GetType());
        Assert.True(options.Optimizer.StepCount > 0);
    }

    [Fact]
    public void A_checkpoint_loads_as_a_weight_file_and_a_weight_file_is_not_a_checkpoint()
    {
        var (x, y) = FitData.Make(100, 12);
        var net = new FitBatchNormNet(seed: 2);
        string checkpoint = Path.Combine(_directory, "c.safetensors");
        net.Fit(x, y, Options(1, new ModelCheckpoint(checkpoint, weightsOnly: false)));

        var other = new FitBatchNormNet(seed: 3);
        other.Load(checkpoint);
        Assert.Equal(net.Parameters.ToArray(), other.Parameters.ToArray());
        Assert.Equal(net.Buffers.ToArray(), other.Buffers.ToArray());
        var metadata = Checkpoint.ReadMetadata(checkpoint);
        Assert.Equal("1", metadata[Checkpoint.Prefix + "epoch"]);
        Assert.Equal("AdamOptimizer", metadata[Checkpoint.Prefix + "optimizer.kind"]);
        Assert.Equal(nameof(FitBatchNormNet), metadata["network"]);

        string weights = Path.Combine(_directory, "w.safetensors");
        net.Save(weights);
        var error = Assert.Throws<WeightFileException>(() => new FitBatchNormNet().Fit(x, y, Options(2) with { ResumeFrom = weights }));
        Assert.Contains("not a checkpoint", error.Message);
        Assert.Equal(weights, error.FileName);
    }

    [Fact]
    public void A_partial_temp_file_never_replaces_the_checkpoint()
    {
        var (x, y) = FitData.Make(100, 13);
        string path = Path.Combine(_directory, "c.safetensors");
        var net = new FitBatchNormNet(seed: 2);
        net.Fit(x, y, Options(1, new ModelCheckpoint(path, weightsOnly: false)));
        byte[] good = File.ReadAllBytes(path);

        // What a kill in the middle of a write leaves: a truncated temp file beside the checkpoint.
        File.WriteAllBytes(Path.Combine(_directory, ".c.safetensors.0123456789abcdef0123456789abcdef.tmp"), good.AsSpan(0, good.Length / 2).ToArray());
        Assert.Equal(good, File.ReadAllBytes(path));
        var resumed = new FitBatchNormNet(seed: 5);
        Assert.Equal(2, resumed.Fit(x, y, Options(2) with { ResumeFrom = path }).Count);

        // A write whose rename fails (the target is a folder) leaves no temp file behind and changes nothing.
        string folder = Path.Combine(_directory, "folder");
        Directory.CreateDirectory(folder);
        Assert.ThrowsAny<IOException>(() => Checkpoint.WriteAtomically(folder, good));
        Assert.Single(Directory.GetFiles(_directory, "*.tmp"));
        Assert.Empty(Directory.GetFileSystemEntries(folder));
    }

    private static FitCallback[] PlateauCallbacks(string path) => new FitCallback[]
    {
        // A huge minDelta: only epoch 1 (against the initial infinity) improves, so the waits count up from epoch 2.
        // ModelCheckpoint first: it must still save the state of the callbacks after it.
        new ModelCheckpoint(path, weightsOnly: false),
        new ReduceLROnPlateau("loss", factor: 0.5, patience: 2, minDelta: 1e9),
        new EarlyStopping("val_loss", patience: 4, minDelta: 1e9, restoreBestWeights: true),
    };

    private static FitOptions PlateauOptions(int epochs, FitCallback[] callbacks) => new()
    {
        Epochs = epochs, BatchSize = 16, Optimizer = Optimizer.AdamW(5e-3f), ValidationSplit = 0.2, Seed = 42, Callbacks = callbacks,
    };

    [Fact]
    public void Callback_counters_best_values_and_best_weights_survive_a_resume()
    {
        var (x, y) = FitData.Make(200, 14);
        string straightPath = Path.Combine(_directory, "straight-{epoch}.safetensors");
        FitCallback[] straightCallbacks = PlateauCallbacks(straightPath);
        var straight = new FitBatchNormNet(seed: 1);
        TrainingHistory full = straight.Fit(x, y, PlateauOptions(10, straightCallbacks));
        var stopping = (EarlyStopping)straightCallbacks[2];
        // Reductions after epochs 3 and 5; the stop after epoch 5 (4 epochs without improvement) restores epoch 1's weights.
        Assert.Equal(5, full.Count);
        Assert.Equal((5, 1), (stopping.StoppedEpoch, stopping.BestEpoch));
        Assert.Equal(new[] { 1f, 1, 1, 0.5f, 0.5f }, full.Epochs.Select(e => e.LearningRate / full[0].LearningRate));

        // The checkpoint after epoch 2 holds the callbacks' state (waits 1, best of epoch 1).
        var metadata = Checkpoint.ReadMetadata(straightPath.Replace("{epoch}", "2"));
        Assert.Equal("1", metadata[Checkpoint.Prefix + "callback.ReduceLROnPlateau.0.wait"]);
        Assert.Equal("1", metadata[Checkpoint.Prefix + "callback.EarlyStopping.0.wait"]);
        Assert.Equal("1", metadata[Checkpoint.Prefix + "callback.EarlyStopping.0.best_epoch"]);
        Assert.Equal(full[0].ValidationLoss.ToString("R", System.Globalization.CultureInfo.InvariantCulture), metadata[Checkpoint.Prefix + "callback.EarlyStopping.0.best"]);
        Assert.True(metadata.ContainsKey(Checkpoint.Prefix + "callback.EarlyStopping.0.best_parameters"));

        foreach (int after in new[] { 2, 3, 4 })
        {
            // Fresh callbacks, network and optimizer, resumed from the checkpoint after epoch `after`.
            FitCallback[] callbacks = PlateauCallbacks(Path.Combine(_directory, $"resumed-{after}-{{epoch}}.safetensors"));
            var resumed = new FitBatchNormNet(seed: 99);
            TrainingHistory history = resumed.Fit(x, y, PlateauOptions(10, callbacks) with { ResumeFrom = straightPath.Replace("{epoch}", after.ToString()) });
            var resumedStopping = (EarlyStopping)callbacks[2];
            Assert.Equal(full.Epochs.Select(e => (e.Loss, e.ValidationLoss, e.LearningRate)), history.Epochs.Select(e => (e.Loss, e.ValidationLoss, e.LearningRate)));
            Assert.Equal((5, 1), (resumedStopping.StoppedEpoch, resumedStopping.BestEpoch));
            Assert.Equal(straight.Parameters.ToArray(), resumed.Parameters.ToArray());
            Assert.Equal(straight.Buffers.ToArray(), resumed.Buffers.ToArray());
            Assert.Equal(straight.Counters.ToArray(), resumed.Counters.ToArray());
        }

        // The checkpoint of the stopping epoch: the resumed run trains no further and keeps the restored weights.
        var done = new FitBatchNormNet(seed: 98);
        TrainingHistory none = done.Fit(x, y, PlateauOptions(10, PlateauCallbacks(Path.Combine(_directory, "done-{epoch}.safetensors"))) with
        {
            ResumeFrom = straightPath.Replace("{epoch}", "5"),
        });
        Assert.Equal(5, none.Count);
        Assert.Equal(straight.Parameters.ToArray(), done.Parameters.ToArray());
        Assert.Equal("true", Checkpoint.ReadMetadata(straightPath.Replace("{epoch}", "5"))[Checkpoint.Prefix + "stop_training"]);

        // A damaged callback value is refused naming the checkpoint.
        var bad = new EarlyStopping("val_loss");
        var state = new System.Collections.Generic.Dictionary<string, string> { ["best"] = "x", ["wait"] = "1", ["best_epoch"] = "1", ["stopped_epoch"] = "0" };
        Assert.Throws<FormatException>(() => bad.LoadState(state));
    }

    [Theory]
    [InlineData("sgd")]
    [InlineData("adam")]
    [InlineData("adamw")]
    public void Optimizer_state_exported_and_imported_continues_bit_for_bit(string kind)
    {
        Optimizer Make() => kind switch
        {
            "sgd" => Optimizer.Sgd(0.1f, momentum: 0.9f, nesterov: true),
            "adam" => Optimizer.Adam(0.01f, weightDecay: 0.1f),
            _ => Optimizer.AdamW(0.01f),
        };
        var random = new Random(1);
        float[][] gradients = Enumerable.Range(0, 6).Select(_ => Enumerable.Range(0, 19).Select(_ => (float)random.NextDouble() - 0.5f).ToArray()).ToArray();
        float[] a = Enumerable.Range(0, 19).Select(i => i * 0.1f).ToArray();
        float[] b = (float[])a.Clone();
        Optimizer one = Make(), two = Make();
        for (int s = 0; s < 3; s++)
        {
            one.Step(a, gradients[s]);
            two.Step(b, gradients[s]);
        }

        OptimizerState state = two.ExportState();
        Optimizer three = Make();
        three.LearningRate = 5;
        three.ImportState(state);
        Assert.Equal(3, three.StepCount);
        Assert.Equal(one.LearningRate, three.LearningRate);
        for (int s = 3; s < 6; s++)
        {
            one.Step(a, gradients[s]);
            three.Step(b, gradients[s]);
        }

        Assert.Equal(a, b);
        Assert.Throws<ArgumentException>(() => Optimizer.Sgd(0.1f).ImportState(Optimizer.Adam().ExportState()));
    }
}
