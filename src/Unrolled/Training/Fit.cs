using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Numerics.Tensors;
using Unrolled.Data;

namespace Unrolled;

/// <summary>What <see cref="NetworkFit.Fit"/> does; Keras' model.fit arguments.</summary>
public sealed record FitOptions
{
    /// <summary>The total number of epochs (a resumed run continues up to this many).</summary>
    public int Epochs { get; init; } = 1;

    public int BatchSize { get; init; } = 32;

    public required Optimizer Optimizer { get; init; }

    /// <summary>The rate of each epoch; without one the optimizer's rate at the start stays (times ReduceLROnPlateau's factor).</summary>
    public LearningRateSchedule? Schedule { get; init; }

    public bool Shuffle { get; init; } = true;

    /// <summary>The shuffle generator's seed.</summary>
    public ulong Seed { get; init; }

    /// <summary>Drop the last incomplete batch (DataLoader's drop_last); Keras keeps it (the default).</summary>
    public bool DropLast { get; init; }

    public float[]? ValidationInputs { get; init; }

    public int[]? ValidationLabels { get; init; }

    /// <summary>A fraction in [0, 1) of the samples, taken from the end before shuffling as Keras does, held out for validation.</summary>
    public double ValidationSplit { get; init; }

    public int ValidationBatchSize { get; init; } = NetworkTraining.DefaultBatchSize;

    public IReadOnlyList<FitCallback> Callbacks { get; init; } = Array.Empty<FitCallback>();

    /// <summary>Reported after every batch (on the training thread; a Progress&lt;T&gt; posts elsewhere and allocates).</summary>
    public IProgress<BatchProgress>? BatchProgress { get; init; }

    /// <summary>Reported after every epoch, after the callbacks.</summary>
    public IProgress<EpochRecord>? EpochProgress { get; init; }

    /// <summary>Applied in place to every training batch.</summary>
    public ImageAugmentation? Augmentation { get; init; }

    /// <summary>Training accuracy per batch, measured with one extra inference pass after each step (Keras reports it too).</summary>
    public bool MeasureTrainingAccuracy { get; init; } = true;

    /// <summary>A checkpoint written by <see cref="Checkpoint.Save"/> or a full ModelCheckpoint: training continues from it bit for bit.</summary>
    public string? ResumeFrom { get; init; }
}

/// <summary>Progress after one batch of an epoch (1-based epoch, batch out of batches, running mean loss).</summary>
public readonly record struct BatchProgress(int Epoch, int Batch, int Batches, double Loss);

/// <summary>The run as callbacks see it; they can stop it or change the learning rate.</summary>
public sealed class FitContext
{
    internal FitContext(INetwork network, FitOptions options, TrainingHistory history)
    {
        Network = network;
        Options = options;
        History = history;
    }

    public INetwork Network { get; }
    public FitOptions Options { get; }
    public Optimizer Optimizer => Options.Optimizer;
    public TrainingHistory History { get; }

    /// <summary>Set by a callback to end training after the current epoch.</summary>
    public bool StopTraining { get; set; }

    /// <summary>Epochs completed so far (also the 0-based index of the next).</summary>
    public int CompletedEpochs { get; internal set; }

    /// <summary>Multiplies each epoch's scheduled rate; ReduceLROnPlateau lowers it.</summary>
    public double LearningRateScale { get; set; } = 1;

    /// <summary>The rate used when there is no schedule (the optimizer's at the start of the first run).</summary>
    public float BaseLearningRate { get; internal set; }

    /// <summary>The shuffle generator, saved in checkpoints.</summary>
    internal ShuffleRandom Random;

    /// <summary>The callbacks' state read from the checkpoint resumed from, handed to them after OnTrainBegin.</summary>
    internal Dictionary<string, string>? ResumedCallbackState;

    internal float ScheduledRate(int epoch) => Options.Schedule?.Rate(epoch) ?? BaseLearningRate;

    /// <summary>Sets the optimizer's rate now and scales the rates of the epochs after this one alike.</summary>
    public void SetLearningRate(float rate)
    {
        Optimizer.RequireNonNegative(rate, nameof(rate));
        float scheduled = ScheduledRate(Math.Max(0, CompletedEpochs - 1));
        LearningRateScale = scheduled > 0 ? rate / (double)scheduled : 0;
        Optimizer.LearningRate = rate;
    }
}

public static class NetworkFit
{
    /// <summary>
    /// Trains like Keras' model.fit: per epoch the learning rate from the schedule, a shuffle, every batch
    /// through <see cref="NetworkTraining.TrainStep(INetwork, ReadOnlySpan{float}, ReadOnlySpan{int}, Optimizer)"/>,
    /// validation, then the callbacks. Allocates nothing per batch once the first epoch has run.
    /// </summary>
    public static TrainingHistory Fit(this INetwork network, float[] inputs, int[] labels, FitOptions options)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.Optimizer);
        if (network.Loss != Loss.CrossEntropy)
            throw new ArgumentException($"Fit with labels needs a cross-entropy network; {network.NetworkName} uses {network.Loss}.", nameof(network));
        if (options.Epochs < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.Epochs, "Epochs cannot be negative.");
        if (options.BatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "The batch size must be at least 1.");
        if (!(options.ValidationSplit >= 0 && options.ValidationSplit < 1))
            throw new ArgumentOutOfRangeException(nameof(options), options.ValidationSplit, "The validation split must be in [0, 1).");
        if ((options.ValidationInputs is null) != (options.ValidationLabels is null))
            throw new ArgumentException("Give both validation inputs and labels, or neither.", nameof(options));
        if (options.ValidationInputs is not null && options.ValidationSplit > 0)
            throw new ArgumentException("Give validation data or a validation split, not both.", nameof(options));

        int size = network.InputSize;
        if (inputs.Length % size != 0 || inputs.Length / size != labels.Length)
            throw new ArgumentException($"The inputs hold {inputs.Length} floats ({size} a sample) for {labels.Length} labels.", nameof(inputs));
        CheckLabels(network, labels, nameof(labels));

        int samples = labels.Length;
        ReadOnlyMemory<float> trainX = inputs, validX = options.ValidationInputs;
        ReadOnlyMemory<int> trainY = labels, validY = options.ValidationLabels;
        if (options.ValidationSplit > 0)
        {
            int held = (int)(samples * options.ValidationSplit);
            int kept = samples - held;
            validX = trainX[(kept * size)..];
            validY = trainY[kept..];
            trainX = trainX[..(kept * size)];
            trainY = trainY[..kept];
        }

        if (options.ValidationInputs is not null)
        {
            if (validX.Length % size != 0 || validX.Length / size != validY.Length)
                throw new ArgumentException($"The validation inputs hold {validX.Length} floats ({size} a sample) for {validY.Length} labels.", nameof(options));
            CheckLabels(network, options.ValidationLabels!, nameof(options));
        }

        int trainCount = trainY.Length;
        if (trainCount == 0)
            throw new ArgumentException("There are no training samples.", nameof(inputs));
        if (options.Augmentation is not null && options.Augmentation.SampleSize != size)
            throw new ArgumentException($"The augmentation works on {options.Augmentation.SampleSize}-float images; the network takes {size}.", nameof(options));

        IReadOnlyList<FitCallback> callbacks = options.Callbacks;
        var history = new TrainingHistory(options.Epochs);
        var context = new FitContext(network, options, history)
        {
            BaseLearningRate = options.Optimizer.LearningRate,
            Random = new ShuffleRandom(options.Seed),
        };
        if (options.ResumeFrom is not null)
            Checkpoint.Load(options.ResumeFrom, network, options.Optimizer, context);

        var batches = new Batches(size, options.BatchSize, trainCount);
        bool hasValidation = validY.Length > 0;
        var validationBatches = hasValidation ? new Batches(size, Math.Max(1, options.ValidationBatchSize), validY.Length) : null;
        int outputSize = network.OutputSize;
        var output = new float[checked(Math.Max(options.BatchSize, options.ValidationBatchSize) * outputSize)];
        int steps = batches.Count(options.DropLast);
        if (steps == 0)
            throw new ArgumentException($"{trainCount} samples make no whole batch of {options.BatchSize}.", nameof(options));

        for (int c = 0; c < callbacks.Count; c++)
            callbacks[c].OnTrainBegin(context);
        Checkpoint.RestoreCallbacks(context);

        for (int epoch = context.CompletedEpochs; epoch < options.Epochs && !context.StopTraining; epoch++)
        {
            for (int c = 0; c < callbacks.Count; c++)
                callbacks[c].OnEpochBegin(context, epoch + 1);

            float rate = (float)(context.ScheduledRate(epoch) * context.LearningRateScale);
            options.Optimizer.LearningRate = rate;
            batches.ResetOrder();
            if (options.Shuffle)
                batches.Shuffle(ref context.Random);

            long start = Stopwatch.GetTimestamp();
            double lossSum = 0;
            long seen = 0, correct = 0;
            for (int b = 0; b < steps; b++)
            {
                int count = batches.Fill(trainX.Span, trainY.Span, b, out Span<float> x, out Span<int> y);
                options.Augmentation?.Apply(x, epoch, (long)b * options.BatchSize);
                float loss = network.TrainStep(x, y, options.Optimizer);
                lossSum += (double)loss * count;
                seen += count;
                if (options.MeasureTrainingAccuracy)
                {
                    Span<float> scores = output.AsSpan(0, count * outputSize);
                    network.Forward(x, scores);
                    correct += CountCorrect(scores, y, outputSize, out _);
                }

                options.BatchProgress?.Report(new BatchProgress(epoch + 1, b + 1, steps, lossSum / seen));
            }

            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            double validationLoss = double.NaN, validationAccuracy = double.NaN;
            if (validationBatches is not null)
                (validationLoss, validationAccuracy) = EvaluateCore(network, validX.Span, validY.Span, validationBatches, output);

            var record = new EpochRecord(epoch + 1, lossSum / seen,
                options.MeasureTrainingAccuracy ? correct / (double)seen : double.NaN,
                validationLoss, validationAccuracy, rate, seconds, seconds > 0 ? seen / seconds : double.NaN);
            history.Add(record);
            context.CompletedEpochs = epoch + 1;
            for (int c = 0; c < callbacks.Count; c++)
                callbacks[c].OnEpochEnd(context, record);
            // Files are written once every callback has ended the epoch, so a checkpoint holds all of their state.
            for (int c = 0; c < callbacks.Count; c++)
            {
                if (callbacks[c] is ModelCheckpoint checkpoint)
                    checkpoint.WritePending(context);
            }

            options.EpochProgress?.Report(record);
        }

        for (int c = 0; c < callbacks.Count; c++)
            callbacks[c].OnTrainEnd(context);
        return history;
    }

    /// <summary>Mean cross-entropy loss and accuracy over a labelled set, in batches of <paramref name="batchSize"/>.</summary>
    public static (double Loss, double Accuracy) EvaluateLoss(this INetwork network, ReadOnlySpan<float> inputs, ReadOnlySpan<int> labels, int batchSize = NetworkTraining.DefaultBatchSize)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (inputs.Length % network.InputSize != 0 || inputs.Length / network.InputSize != labels.Length)
            throw new ArgumentException($"The inputs hold {inputs.Length} floats ({network.InputSize} a sample) for {labels.Length} labels.", nameof(inputs));
        if (labels.Length == 0)
            throw new ArgumentException("Loss over no samples is undefined.", nameof(inputs));
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)network.OutputSize)
                throw new ArgumentOutOfRangeException(nameof(labels), labels[i], $"Label {i} is {labels[i]}, outside the network's {network.OutputSize} classes.");
        }

        var batches = new Batches(network.InputSize, batchSize, labels.Length);
        return EvaluateCore(network, inputs, labels, batches, new float[checked(batchSize * network.OutputSize)]);
    }

    private static (double Loss, double Accuracy) EvaluateCore(INetwork network, ReadOnlySpan<float> inputs, ReadOnlySpan<int> labels, Batches batches, float[] output)
    {
        int outputSize = network.OutputSize;
        double loss = 0;
        long correct = 0;
        for (int b = 0; b < batches.Count(dropLast: false); b++)
        {
            int count = batches.Fill(inputs, labels, b, out Span<float> x, out Span<int> y);
            Span<float> scores = output.AsSpan(0, count * outputSize);
            network.Forward(x, scores);
            correct += CountCorrect(scores, y, outputSize, out double batchLoss);
            loss += batchLoss;
        }

        return (loss / labels.Length, correct / (double)labels.Length);
    }

    private static int CountCorrect(ReadOnlySpan<float> scores, ReadOnlySpan<int> labels, int classes, out double loss)
    {
        int correct = 0;
        loss = 0;
        for (int s = 0; s < labels.Length; s++)
        {
            ReadOnlySpan<float> z = scores.Slice(s * classes, classes);
            if (TensorPrimitives.IndexOfMax(z) == labels[s])
                correct++;
            float max = TensorPrimitives.Max(z);
            double sum = 0;
            foreach (float v in z)
                sum += Math.Exp(v - max);
            loss += Math.Log(sum) + max - z[labels[s]];
        }

        return correct;
    }

    private static void CheckLabels(INetwork network, ReadOnlySpan<int> labels, string name)
    {
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)network.OutputSize)
                throw new ArgumentOutOfRangeException(name, labels[i], $"Label {i} is {labels[i]}, outside the network's {network.OutputSize} classes.");
        }
    }
}
