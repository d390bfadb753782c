using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using Unrolled;
using Unrolled.Data;

namespace FashionMnist;

/// <summary>
/// Trains one of the seed networks with <see cref="NetworkFit.Fit"/> on Fashion-MNIST (or CIFAR-10, or an
/// image-folder tree) and reports the test accuracy and memory use after every epoch.
/// </summary>
public static class Program
{
    // GC.GetTotalAllocatedBytes() when PrintMemory last ran, so that each line shows what was allocated since.
    private static long s_allocatedAtLastPrint;

    public static int Main(string[] args)
    {
        Options options;
        try
        {
            options = Options.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine(Options.Usage);
            return 2;
        }
        if (options.Help)
        {
            Console.WriteLine(Options.Usage);
            return 0;
        }

        try
        {
            return Run(options);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or WeightFileException or UnauthorizedAccessException
                                      or Cifar10FormatException or ImageFolderException or ArgumentException or InvalidOperationException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    private static int Run(Options o)
    {
        var clock = Stopwatch.StartNew();
        ModelInfo model = o.ModelInfo;
        DataSet data = Load(o, model);
        ModelVariant variant = model.For(data.Channels, data.Height, data.Width);
        INetwork net = variant.Create(o.Seed);
        if (data.ClassNames.Count > net.OutputSize)
            throw new InvalidDataException($"'{data.Directory}' has {data.ClassNames.Count} classes; the example's networks have {net.OutputSize} outputs.");
        net.MaxDegreeOfParallelism = o.Threads;
        Console.WriteLine(variant.Summary);
        Console.WriteLine($"Kernels: {Kernels.ActivePath}, threads: {o.Threads}");
        Console.WriteLine($"{data.Format}: {data.Train.Count:N0} training and {data.Test.Count:N0} test images of {data.Shape} in {data.ClassNames.Count} classes from {data.Directory} ({clock.Elapsed.TotalSeconds:F1} s)");

        if (o.Load is not null)
        {
            net.Load(o.Load);
            Console.WriteLine($"Loaded weights from {o.Load}");
        }
        PrintMemory("before training");

        var history = new List<EpochResult>();
        if (o.Epochs == 0)
        {
            var (loss, accuracy) = Evaluate(net, data.Test);
            history.Add(new EpochResult(0, double.NaN, double.NaN, double.NaN, double.NaN, loss, accuracy, double.NaN, 0));
        }
        else
        {
            int code = Train(net, variant, data, o, history);
            if (code != 0) return code;
        }

        if (o.Save is not null)
        {
            net.Save(o.Save);
            Console.WriteLine($"Saved weights to {o.Save}");
        }
        var (_, testAccuracy) = Evaluate(net, data.Test);
        if (o.Report is not null)
        {
            string page = Report.Write(o.Report, net, variant.Summary, history, data, o.Model, o.ValidationSplit == 0);
            Console.WriteLine($"Report: {page}");
        }
        Console.WriteLine($"wall time: {clock.Elapsed.TotalSeconds:F1} s");
        Console.WriteLine($"test accuracy: {testAccuracy * 100:F2}%");
        return 0;
    }

    /// <summary>The data of --data, cut to --train-limit and --test-limit (in a method of its own so the full sets are garbage once it returns).</summary>
    private static DataSet Load(Options o, ModelInfo model)
    {
        DataSet full = DataSets.Load(o.Data, channels =>
        {
            // Image folders are resized to the input of the model's variant with the images' channel count.
            foreach (ModelVariant v in model.Variants)
                if (v.Channels == channels) return (v.Channels, v.Height, v.Width);
            return (model.Variants[0].Channels, model.Variants[0].Height, model.Variants[0].Width);
        });
        return full.WithLimits(o.TrainLimit, o.TestLimit);
    }

    private static int Train(INetwork net, ModelVariant variant, DataSet data, Options o, List<EpochResult> results)
    {
        Optimizer optimizer = o.Optimizer switch
        {
            "sgd" => Optimizer.Sgd(o.LearningRate, momentum: 0.9f),
            "adam" => Optimizer.Adam(o.LearningRate),
            _ => Optimizer.AdamW(o.LearningRate),
        };
        LearningRateSchedule schedule = o.Schedule == "constant"
            ? LearningRateSchedule.Constant(o.LearningRate)
            : LearningRateSchedule.Cosine(o.LearningRate, o.Epochs, o.LearningRate * 0.02f);

        bool testIsValidation = o.ValidationSplit == 0;
        var monitor = new EpochMonitor(net, data.Test, testIsValidation);
        var callbacks = new List<FitCallback> { monitor };
        string? directory = o.CheckpointDirectory;
        string? last = null;
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
            last = Path.Combine(directory, "last.safetensors");
            callbacks.Add(new ModelCheckpoint(last, monitor: "val_loss", saveBestOnly: false, weightsOnly: false));
            callbacks.Add(new ModelCheckpoint(Path.Combine(directory, "best.safetensors"), monitor: "val_accuracy", saveBestOnly: true, weightsOnly: true));
        }
        if (o.Resume && !File.Exists(last))
            throw new FileNotFoundException($"--resume: there is no checkpoint '{last}' to continue from.", last);
        EarlyStopping? early = o.EarlyStopping > 0 ? new EarlyStopping("val_loss", o.EarlyStopping, restoreBestWeights: true) : null;
        if (early is not null) callbacks.Add(early);

        var bars = new ProgressBars(o.Epochs, o.Batch, testIsValidation);
        var fit = new FitOptions
        {
            Epochs = o.Epochs,
            BatchSize = o.Batch,
            Optimizer = optimizer,
            Schedule = schedule,
            Seed = unchecked((ulong)(long)o.Seed),
            ValidationInputs = testIsValidation ? data.Test.Images : null,
            ValidationLabels = testIsValidation ? data.Test.Labels : null,
            ValidationSplit = o.ValidationSplit,
            Callbacks = callbacks,
            BatchProgress = bars,
            EpochProgress = new EpochPrinter(monitor, bars),
            Augmentation = o.Augment
                ? new ImageAugmentation(data.Channels, data.Height, data.Width, padding: data.Height >= 32 ? 4 : 2, horizontalFlip: true, seed: unchecked((ulong)(long)o.Seed))
                : null,
            ResumeFrom = o.Resume ? last : null,
        };

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Training {variant.ClassName} ({o.Model}): {o.Epochs} epochs, batch {o.Batch}, {o.Optimizer} lr {o.LearningRate:G3}, {o.Schedule} schedule, ") +
            string.Create(CultureInfo.InvariantCulture, $"validation: {(testIsValidation ? "the test set" : $"the last {o.ValidationSplit * 100:G4} % of the training set")}") +
            (o.Augment ? ", augmented (crop, flip)" : "") +
            (early is not null ? $", early stopping after {o.EarlyStopping} epochs without a lower val_loss" : "") +
            (directory is not null ? $", checkpoints in {directory}" : "") +
            (o.Resume ? ", resuming" : ""));

        TrainingHistory history;
        try
        {
            history = net.Fit(data.Train.Images, data.Train.Labels, fit);
        }
        catch (TrainingDivergedException e)
        {
            bars.Stop();
            // The library refused the step and left the weights as they were; say where it happened.
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"error: epoch {monitor.Epoch}, step {optimizer.StepCount + 1} of the run (learning rate {optimizer.LearningRate:G3}, --lr {o.LearningRate:G3}): {e.Message}"));
            return 1;
        }
        finally
        {
            bars.Stop();
        }

        foreach (EpochRecord r in history.Epochs)
        {
            var (testLoss, testAccuracy) = monitor.Test(r);
            results.Add(new EpochResult(r.Epoch, r.Loss, r.Accuracy, r.ValidationLoss, r.ValidationAccuracy, testLoss, testAccuracy, r.LearningRate, r.ImagesPerSecond));
        }
        if (early is not null && early.StoppedEpoch > 0)
            Console.WriteLine($"early stopping: no lower val_loss for {early.Patience} epochs, stopped after epoch {early.StoppedEpoch}; weights of epoch {early.BestEpoch} restored");
        if (directory is not null)
        {
            history.SaveCsv(Path.Combine(directory, "history.csv"));
            history.SaveJson(Path.Combine(directory, "history.json"));
            Console.WriteLine($"Checkpoints: {last} (resume with --checkpoint {directory} --resume), {Path.Combine(directory, "best.safetensors")} (best val_accuracy)");
        }
        if (o.Report is not null)
        {
            Directory.CreateDirectory(o.Report);
            history.SaveCsv(Path.Combine(o.Report, "history.csv"));
        }
        return 0;
    }

    /// <summary>
    /// Prints the process's working set and the managed heap, to watch for growth over a long run. All figures are
    /// taken after a full collection (GC.GetTotalMemory(true)), so the managed heap counts live objects only and
    /// garbage awaiting collection does not blur the comparison from epoch to epoch; the GC heap size is what the
    /// GC holds, and "allocated" counts every byte allocated since the previous line.
    /// </summary>
    internal static void PrintMemory(string when)
    {
        const double MB = 1e6;
        long live = GC.GetTotalMemory(forceFullCollection: true);
        long heap = GC.GetGCMemoryInfo().HeapSizeBytes;
        long workingSet = Environment.WorkingSet;
        long allocated = GC.GetTotalAllocatedBytes();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"memory {when}: working set {workingSet / MB:F2} MB, managed heap {live / MB:F2} MB, GC heap size {heap / MB:F2} MB, allocated {(allocated - s_allocatedAtLastPrint) / MB:F2} MB"));
        s_allocatedAtLastPrint = allocated;
    }

    /// <summary>Mean cross-entropy and accuracy over a set, in chunks of 500 images.</summary>
    internal static (double Loss, double Accuracy) Evaluate(INetwork net, ImageSet set)
    {
        int count = set.Count, size = set.SampleSize, classes = net.OutputSize;
        const int chunk = 500;
        var output = new float[chunk * classes];
        double loss = 0;
        int correct = 0;
        for (int start = 0; start < count; start += chunk)
        {
            int m = Math.Min(chunk, count - start);
            net.Forward(set.Images.AsSpan(start * size, m * size), output.AsSpan(0, m * classes));
            for (int b = 0; b < m; b++)
            {
                var z = output.AsSpan(b * classes, classes);
                int label = set.Labels[start + b];
                if (System.Numerics.Tensors.TensorPrimitives.IndexOfMax(z) == label) correct++;
                float max = System.Numerics.Tensors.TensorPrimitives.Max(z);
                double sum = 0;
                foreach (float v in z) sum += Math.Exp(v - max);
                loss += Math.Log(sum) + max - z[label];
            }
        }
        return (loss / count, correct / (double)count);
    }
}

/// <summary>One epoch's figures, for the console and the report (NaN where not measured).</summary>
public sealed record EpochResult(int Epoch, double TrainLoss, double TrainAccuracy, double ValidationLoss, double ValidationAccuracy,
    double TestLoss, double TestAccuracy, double LearningRate, double ImagesPerSecond);
