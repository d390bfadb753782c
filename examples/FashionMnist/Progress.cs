using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Threading;
using Spectre.Console;
using Unrolled;

namespace FashionMnist;

/// <summary>
/// A callback that knows the epoch being trained (for error messages) and, when the validation data is not the
/// test set, evaluates the test set after every epoch so that the console and the report show both.
/// </summary>
internal sealed class EpochMonitor(INetwork net, ImageSet test, bool testIsValidation) : FitCallback
{
    private readonly Dictionary<int, (double Loss, double Accuracy)> _test = new();

    /// <summary>The 1-based epoch in progress (or last finished).</summary>
    public int Epoch { get; private set; } = 1;

    public override void OnEpochBegin(FitContext context, int epoch) => Epoch = epoch;

    public override void OnEpochEnd(FitContext context, EpochRecord record)
    {
        if (!testIsValidation) _test[record.Epoch] = Program.Evaluate(net, test);
    }

    /// <summary>The test loss and accuracy after an epoch (NaN for epochs of an earlier run, resumed, with a validation split).</summary>
    public (double Loss, double Accuracy) Test(EpochRecord record) =>
        testIsValidation ? (record.ValidationLoss, record.ValidationAccuracy)
        : _test.TryGetValue(record.Epoch, out var t) ? t : (double.NaN, double.NaN);
}

/// <summary>After every epoch: ends its progress bar, prints its figures and a memory line.</summary>
internal sealed class EpochPrinter(EpochMonitor monitor, ProgressBars bars) : IProgress<EpochRecord>
{
    public void Report(EpochRecord r)
    {
        bars.Stop();
        var (testLoss, testAccuracy) = monitor.Test(r);
        var inv = CultureInfo.InvariantCulture;
        string validation = bars.TestIsValidation || double.IsNaN(r.ValidationLoss) ? ""
            : string.Create(inv, $"val loss {r.ValidationLoss:F4}, val accuracy {r.ValidationAccuracy * 100:F2}%, ");
        Console.WriteLine(string.Create(inv,
            $"epoch {r.Epoch}: train loss {r.Loss:F4}, train accuracy {r.Accuracy * 100:F2}%, {validation}test loss {testLoss:F4}, test accuracy {testAccuracy * 100:F2}%, " +
            $"{r.ImagesPerSecond:N0} img/s, {r.Seconds:F1} s, lr {r.LearningRate:G3}"));
        Program.PrintMemory($"after epoch {r.Epoch}");
    }
}

/// <summary>
/// A Spectre.Console progress bar per epoch, fed by Fit's per-batch reports. The bar's live display runs on a
/// thread of its own for the epoch (Fit owns the loop, so the display cannot wrap it), and the epoch's line is
/// printed after the bar has finished, never into it.
/// </summary>
internal sealed class ProgressBars(int epochs, int batchSize, bool testIsValidation) : IProgress<BatchProgress>
{
    private Thread? _thread;
    private ProgressTask? _task;
    private ManualResetEventSlim? _done;
    private int _epoch;
    private long _start;

    public bool TestIsValidation { get; } = testIsValidation;

    public void Report(BatchProgress p)
    {
        if (p.Epoch != _epoch || _thread is null) Start(p.Epoch, p.Batches);
        ProgressTask task = _task!;
        task.Value = p.Batch;
        if (p.Batch % 20 == 0 || p.Batch == p.Batches)
        {
            double seconds = Stopwatch.GetElapsedTime(_start).TotalSeconds;
            double rate = seconds > 0 ? (double)p.Batch * batchSize / seconds : 0;
            task.Description = string.Create(CultureInfo.InvariantCulture, $"epoch {p.Epoch}/{epochs}  loss {p.Loss:F4}  {rate:N0} img/s");
        }
    }

    private void Start(int epoch, int batches)
    {
        Stop();
        _epoch = epoch;
        _start = Stopwatch.GetTimestamp();
        var done = new ManualResetEventSlim(false);
        using var ready = new ManualResetEventSlim(false);
        string description = string.Create(CultureInfo.InvariantCulture, $"epoch {epoch}/{epochs}");
        _done = done;
        _thread = new Thread(() =>
            AnsiConsole.Progress()
                .AutoClear(false)
                .HideCompleted(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    try
                    {
                        _task = ctx.AddTask(description, maxValue: batches);
                    }
                    finally
                    {
                        ready.Set();
                    }
                    done.Wait();
                    ctx.Refresh();
                }))
        { IsBackground = true, Name = "progress" };
        _thread.Start();
        ready.Wait();
    }

    /// <summary>Ends the current bar (if any) and waits until its display has finished.</summary>
    public void Stop()
    {
        if (_thread is null) return;
        _done!.Set();
        _thread.Join();
        _done.Dispose();
        _thread = null;
        _task = null;
    }
}
