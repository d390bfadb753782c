using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using Spectre.Console;
using Unrolled;

namespace FashionMnist;

/// <summary>Trains a network on Fashion-MNIST and reports test accuracy and memory use after every epoch.</summary>
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
        catch (Exception e) when (e is IOException or InvalidDataException or WeightFileException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    private static int Run(Options o)
    {
        var clock = Stopwatch.StartNew();
        INetwork net = o.Model switch
        {
            "lenet5" => new LeNet5(o.Seed),
            _ => new FashionNet(o.Seed),
        };
        string summary = o.Model == "lenet5" ? LeNet5.Summary : FashionNet.Summary;
        net.MaxDegreeOfParallelism = o.Threads;
        Console.WriteLine(summary);
        Console.WriteLine($"Kernels: {Kernels.ActivePath}, threads: {o.Threads}");

        if (o.Load is not null)
        {
            net.Load(o.Load);
            Console.WriteLine($"Loaded weights from {o.Load}");
        }

        var (train, test) = Load(o);
        Console.WriteLine($"Fashion-MNIST: {train.Count:N0} training and {test.Count:N0} test images from {o.Data} ({clock.Elapsed.TotalSeconds:F1} s)");
        PrintMemory("before training");

        var history = new List<EpochResult>();
        if (o.Epochs == 0)
        {
            var (loss, accuracy) = Evaluate(net, test);
            history.Add(new EpochResult(0, double.NaN, double.NaN, loss, accuracy, 0));
        }
        else
        {
            Optimizer optimizer = o.Optimizer switch
            {
                "sgd" => Optimizer.Sgd(o.LearningRate, momentum: 0.9f),
                "adam" => Optimizer.Adam(o.LearningRate),
                _ => Optimizer.AdamW(o.LearningRate),
            };
            LearningRateSchedule schedule = LearningRateSchedule.Cosine(o.LearningRate, o.Epochs, o.LearningRate * 0.02f);
            try
            {
                Train(net, optimizer, schedule, train, test, o, history);
            }
            catch (TrainingDivergedException e)
            {
                // The library refused the step and left the weights as they were; say where it happened.
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"error: epoch {history.Count + 1}, step {optimizer.StepCount + 1} of the run (learning rate {optimizer.LearningRate:G3}, --lr {o.LearningRate:G3}): {e.Message}"));
                return 1;
            }
        }

        if (o.Save is not null)
        {
            net.Save(o.Save);
            Console.WriteLine($"Saved weights to {o.Save}");
        }
        if (o.Report is not null)
        {
            string page = Report.Write(o.Report, net, summary, history, test, o.Model);
            Console.WriteLine($"Report: {page}");
        }
        Console.WriteLine($"wall time: {clock.Elapsed.TotalSeconds:F1} s");
        Console.WriteLine($"test accuracy: {history[^1].TestAccuracy * 100:F2}%");
        return 0;
    }

    private static void Train(INetwork net, Optimizer optimizer, LearningRateSchedule schedule, LabeledImages train, LabeledImages test, Options o, List<EpochResult> history)
    {
        int n = train.Count, size = train.SampleSize, batch = o.Batch;
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        var random = new Random(o.Seed);
        var x = new float[batch * size];
        var y = new int[batch];
        var output = new float[batch * net.OutputSize];

        for (int epoch = 1; epoch <= o.Epochs; epoch++)
        {
            schedule.Apply(optimizer, epoch - 1);
            random.Shuffle(order);
            double lossSum = 0;
            long seen = 0, sampledCorrect = 0, sampled = 0;
            var watch = Stopwatch.StartNew();
            int steps = n / batch; // the incomplete last batch is dropped, as DataLoader(drop_last=True) does

            AnsiConsole.Progress()
                .AutoClear(false)
                .HideCompleted(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask($"epoch {epoch}/{o.Epochs}", maxValue: steps);
                    for (int s = 0; s < steps; s++)
                    {
                        for (int b = 0; b < batch; b++)
                        {
                            int index = order[s * batch + b];
                            train.Image(index).CopyTo(x.AsSpan(b * size, size));
                            y[b] = train.Labels[index];
                        }
                        float loss = net.TrainStep(x, y, optimizer); // throws TrainingDivergedException on a NaN or infinite loss
                        lossSum += loss * batch;
                        seen += batch;
                        if (s % 20 == 0 || s == steps - 1)
                        {
                            // Training accuracy on this batch with the updated weights (cheap: one inference batch).
                            net.Forward(x, output);
                            sampledCorrect += CountCorrect(output, y, net.OutputSize);
                            sampled += batch;
                            double rate = seen / watch.Elapsed.TotalSeconds;
                            double trainAccuracy = sampledCorrect / (double)sampled;
                            task.Description = $"epoch {epoch}/{o.Epochs}  loss {lossSum / seen:F4}  acc {trainAccuracy * 100:F1}%  {rate:N0} img/s";
                        }
                        task.Increment(1);
                    }
                });

            double seconds = watch.Elapsed.TotalSeconds;
            var (testLoss, testAccuracy) = Evaluate(net, test);
            var (_, trainAcc) = Evaluate(net, train, limit: 10_000);
            history.Add(new EpochResult(epoch, lossSum / seen, trainAcc, testLoss, testAccuracy, seen / seconds));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"epoch {epoch}: train loss {lossSum / seen:F4}, train accuracy {trainAcc * 100:F2}%, test loss {testLoss:F4}, test accuracy {testAccuracy * 100:F2}%, {seen / seconds:N0} img/s, lr {optimizer.LearningRate:G3}"));
            PrintMemory($"after epoch {epoch}");
        }
    }

    /// <summary>
    /// The training and test sets, cut to --train-limit and --test-limit images. In a method of its own so that
    /// the full sets are garbage once it returns (a caller's locals can stay reachable to its end).
    /// </summary>
    private static (LabeledImages Train, LabeledImages Test) Load(Options o)
    {
        var (train, test) = Unrolled.FashionMnist.Load(o.Data);
        return (First(train, o.TrainLimit), First(test, o.TestLimit));
    }

    /// <summary>The first <paramref name="limit"/> images of <paramref name="set"/> (all of them when it has no more).</summary>
    private static LabeledImages First(LabeledImages set, int limit)
    {
        if (limit >= set.Count) return set;
        return new LabeledImages(set.Images.AsSpan(0, limit * set.SampleSize).ToArray(), set.Labels.AsSpan(0, limit).ToArray(), set.Rows, set.Cols);
    }

    /// <summary>
    /// Prints the process's working set and the managed heap, to watch for growth over a long run. All figures are
    /// taken after a full collection (GC.GetTotalMemory(true)), so the managed heap counts live objects only and
    /// garbage awaiting collection does not blur the comparison from epoch to epoch; the GC heap size is what the
    /// GC holds, and "allocated" counts every byte allocated since the previous line.
    /// </summary>
    private static void PrintMemory(string when)
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

    private static int CountCorrect(float[] output, int[] labels, int classes)
    {
        int correct = 0;
        for (int b = 0; b < labels.Length; b++)
        {
            var row = output.AsSpan(b * classes, classes);
            if (System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row) == labels[b]) correct++;
        }
        return correct;
    }

    /// <summary>Mean cross-entropy and accuracy over a set (or its first <paramref name="limit"/> images).</summary>
    internal static (double Loss, double Accuracy) Evaluate(INetwork net, LabeledImages set, int limit = int.MaxValue, int[]? predictions = null)
    {
        int count = Math.Min(set.Count, limit), size = set.SampleSize, classes = net.OutputSize;
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
                int predicted = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(z);
                if (predictions is not null) predictions[start + b] = predicted;
                if (predicted == label) correct++;
                float max = System.Numerics.Tensors.TensorPrimitives.Max(z);
                double sum = 0;
                foreach (float v in z) sum += Math.Exp(v - max);
                loss += Math.Log(sum) + max - z[label];
            }
        }
        return (loss / count, correct / (double)count);
    }
}

/// <summary>One epoch's figures, for the console and the report.</summary>
public sealed record EpochResult(int Epoch, double TrainLoss, double TrainAccuracy, double TestLoss, double TestAccuracy, double ImagesPerSecond);
