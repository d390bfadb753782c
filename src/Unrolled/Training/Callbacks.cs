using System;
using System.Collections.Generic;
using System.Globalization;

namespace Unrolled;

/// <summary>Hooks into <see cref="NetworkFit.Fit"/> (Keras' Callback). Epochs are 1-based.</summary>
public abstract class FitCallback
{
    public virtual void OnTrainBegin(FitContext context) { }

    public virtual void OnEpochBegin(FitContext context, int epoch) { }

    public virtual void OnEpochEnd(FitContext context, EpochRecord record) { }

    public virtual void OnTrainEnd(FitContext context) { }

    /// <summary>
    /// Writes what this callback must remember for a resumed run to continue as the uninterrupted one (counters,
    /// best values) as strings into <paramref name="state"/>; <see cref="Checkpoint.Save"/> stores them in the
    /// checkpoint under the callback's type name and its place among the callbacks of that type. Nothing by default.
    /// </summary>
    public virtual void SaveState(IDictionary<string, string> state) { }

    /// <summary>
    /// Restores what <see cref="SaveState"/> wrote, when Fit resumes from a checkpoint: called after
    /// <see cref="OnTrainBegin"/>, before the first epoch. Throw <see cref="FormatException"/> for a value that does not parse.
    /// </summary>
    public virtual void LoadState(IReadOnlyDictionary<string, string> state) { }

    /// <summary>A double that reads back bit for bit (infinities and NaN included).</summary>
    protected static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    protected static string Format(long value) => value.ToString(CultureInfo.InvariantCulture);

    protected static double ParseDouble(IReadOnlyDictionary<string, string> state, string key) =>
        double.Parse(Get(state, key), NumberStyles.Float, CultureInfo.InvariantCulture);

    protected static int ParseInt(IReadOnlyDictionary<string, string> state, string key) =>
        int.Parse(Get(state, key), NumberStyles.Integer, CultureInfo.InvariantCulture);

    private static string Get(IReadOnlyDictionary<string, string> state, string key) =>
        state.TryGetValue(key, out string? value) ? value : throw new FormatException($"the callback state has no '{key}'.");
}

/// <summary>Whether a monitored value improves by going down or up; Auto: up for accuracies, down otherwise (Keras' mode="auto").</summary>
public enum MonitorMode
{
    Auto,
    Min,
    Max,
}

/// <summary>Tracks the best value of a metric (the part EarlyStopping, ReduceLROnPlateau and ModelCheckpoint share).</summary>
public abstract class MonitorCallback : FitCallback
{
    protected MonitorCallback(string monitor, MonitorMode mode, double minDelta)
    {
        ArgumentNullException.ThrowIfNull(monitor);
        _ = new EpochRecord().Metric(monitor); // rejects unknown names now
        if (!(minDelta >= 0))
            throw new ArgumentOutOfRangeException(nameof(minDelta), minDelta, "minDelta must be at least 0.");
        Monitor = monitor;
        Maximize = mode == MonitorMode.Max || (mode == MonitorMode.Auto && monitor.Contains("acc", StringComparison.Ordinal));
        MinDelta = minDelta;
        Best = Maximize ? double.NegativeInfinity : double.PositiveInfinity;
    }

    public string Monitor { get; }

    public bool Maximize { get; }

    public double MinDelta { get; }

    /// <summary>The best value seen so far.</summary>
    public double Best { get; protected set; }

    public override void OnTrainBegin(FitContext context) =>
        Best = Maximize ? double.NegativeInfinity : double.PositiveInfinity;

    /// <summary>The monitored value of the epoch; throws when it was not measured (e.g. val_loss without validation data).</summary>
    protected double Current(EpochRecord record)
    {
        double value = record.Metric(Monitor);
        if (double.IsNaN(value))
        {
            throw new InvalidOperationException(
                $"{GetType().Name} monitors '{Monitor}', which epoch {record.Epoch} did not measure (give validation data or a validation split for val_ metrics).");
        }

        return value;
    }

    protected bool Improves(double value) => Maximize ? value - MinDelta > Best : value + MinDelta < Best;

    /// <summary>The best value (and, in derived classes, their counters).</summary>
    public override void SaveState(IDictionary<string, string> state) => state["best"] = Format(Best);

    public override void LoadState(IReadOnlyDictionary<string, string> state) => Best = ParseDouble(state, "best");
}

/// <summary>
/// Keras' EarlyStopping: stops after <see cref="Patience"/> epochs in a row without an improvement of more
/// than minDelta, and with restoreBestWeights puts back the parameters, buffers and counters of the best epoch.
/// </summary>
public sealed class EarlyStopping(string monitor = "val_loss", int patience = 0, double minDelta = 0, bool restoreBestWeights = false,
    MonitorMode mode = MonitorMode.Auto) : MonitorCallback(monitor, mode, minDelta)
{
    private float[]? _bestParameters, _bestBuffers;
    private long[]? _bestCounters;

    public int Patience { get; } = patience >= 0 ? patience : throw new ArgumentOutOfRangeException(nameof(patience), patience, "Patience cannot be negative.");

    public bool RestoreBestWeights { get; } = restoreBestWeights;

    /// <summary>Epochs since the last improvement.</summary>
    public int Wait { get; private set; }

    /// <summary>The epoch (1-based) training stopped after, 0 when it did not stop early.</summary>
    public int StoppedEpoch { get; private set; }

    /// <summary>The epoch (1-based) of the best value.</summary>
    public int BestEpoch { get; private set; }

    public override void OnTrainBegin(FitContext context)
    {
        base.OnTrainBegin(context);
        Wait = 0;
        StoppedEpoch = 0;
        BestEpoch = 0;
    }

    public override void OnEpochEnd(FitContext context, EpochRecord record)
    {
        double value = Current(record);
        if (Improves(value))
        {
            Best = value;
            BestEpoch = record.Epoch;
            Wait = 0;
            if (RestoreBestWeights)
            {
                INetwork n = context.Network;
                _bestParameters = Copy(n.Parameters, _bestParameters);
                _bestBuffers = Copy(n.Buffers, _bestBuffers);
                _bestCounters = n.Counters.ToArray();
            }

            return;
        }

        Wait++;
        if (Wait >= Patience)
        {
            StoppedEpoch = record.Epoch;
            context.StopTraining = true;
            if (RestoreBestWeights && _bestParameters is not null)
            {
                INetwork n = context.Network;
                _bestParameters.CopyTo(n.Parameters);
                _bestBuffers!.CopyTo(n.Buffers);
                _bestCounters!.CopyTo(n.Counters);
            }
        }
    }

    /// <summary>Best, the wait, the best and stopped epochs and, with restoreBestWeights, the best epoch's weights.</summary>
    public override void SaveState(IDictionary<string, string> state)
    {
        base.SaveState(state);
        state["wait"] = Format(Wait);
        state["best_epoch"] = Format(BestEpoch);
        state["stopped_epoch"] = Format(StoppedEpoch);
        if (_bestParameters is not null)
        {
            state["best_parameters"] = Checkpoint.ToBase64(_bestParameters);
            state["best_buffers"] = Checkpoint.ToBase64(_bestBuffers!);
            state["best_counters"] = Checkpoint.ToBase64(_bestCounters!);
        }
    }

    public override void LoadState(IReadOnlyDictionary<string, string> state)
    {
        base.LoadState(state);
        Wait = ParseInt(state, "wait");
        BestEpoch = ParseInt(state, "best_epoch");
        StoppedEpoch = ParseInt(state, "stopped_epoch");
        if (state.TryGetValue("best_parameters", out string? parameters))
        {
            _bestParameters = Checkpoint.FloatsFromBase64(parameters);
            _bestBuffers = Checkpoint.FloatsFromBase64(state.TryGetValue("best_buffers", out string? b) ? b : throw new FormatException("the best weights have no buffers."));
            _bestCounters = Checkpoint.LongsFromBase64(state.TryGetValue("best_counters", out string? c) ? c : throw new FormatException("the best weights have no counters."));
        }
        else
        {
            _bestParameters = null;
            _bestBuffers = null;
            _bestCounters = null;
        }
    }

    private static float[] Copy(Span<float> source, float[]? destination)
    {
        destination ??= new float[source.Length];
        source.CopyTo(destination);
        return destination;
    }
}

/// <summary>
/// Keras' ReduceLROnPlateau: after <see cref="Patience"/> epochs without improvement the learning rate is
/// multiplied by <see cref="Factor"/> (never below <see cref="Minimum"/>), then <see cref="Cooldown"/> epochs pass
/// before counting again.
/// </summary>
public sealed class ReduceLROnPlateau : MonitorCallback
{
    public ReduceLROnPlateau(string monitor = "val_loss", double factor = 0.1, int patience = 10, float minimum = 0,
        double minDelta = 1e-4, int cooldown = 0, MonitorMode mode = MonitorMode.Auto)
        : base(monitor, mode, minDelta)
    {
        if (!(factor > 0 && factor < 1))
            throw new ArgumentOutOfRangeException(nameof(factor), factor, "The factor must be in (0, 1).");
        if (patience < 0)
            throw new ArgumentOutOfRangeException(nameof(patience), patience, "Patience cannot be negative.");
        if (cooldown < 0)
            throw new ArgumentOutOfRangeException(nameof(cooldown), cooldown, "The cooldown cannot be negative.");
        Optimizer.RequireNonNegative(minimum, nameof(minimum));
        Factor = factor;
        Patience = patience;
        Minimum = minimum;
        Cooldown = cooldown;
    }

    public double Factor { get; }
    public int Patience { get; }
    public float Minimum { get; }
    public int Cooldown { get; }

    public int Wait { get; private set; }

    private int _cooldownLeft;

    public override void OnTrainBegin(FitContext context)
    {
        base.OnTrainBegin(context);
        Wait = 0;
        _cooldownLeft = 0;
    }

    /// <summary>Best, the wait and the cooldown left.</summary>
    public override void SaveState(IDictionary<string, string> state)
    {
        base.SaveState(state);
        state["wait"] = Format(Wait);
        state["cooldown_left"] = Format(_cooldownLeft);
    }

    public override void LoadState(IReadOnlyDictionary<string, string> state)
    {
        base.LoadState(state);
        Wait = ParseInt(state, "wait");
        _cooldownLeft = ParseInt(state, "cooldown_left");
    }

    public override void OnEpochEnd(FitContext context, EpochRecord record)
    {
        double value = Current(record);
        if (_cooldownLeft > 0)
        {
            _cooldownLeft--;
            Wait = 0;
        }

        if (Improves(value))
        {
            Best = value;
            Wait = 0;
        }
        else if (_cooldownLeft == 0)
        {
            Wait++;
            if (Wait >= Patience)
            {
                float old = context.Optimizer.LearningRate;
                if (old > Minimum)
                {
                    context.SetLearningRate(Math.Max((float)(old * Factor), Minimum));
                    _cooldownLeft = Cooldown;
                    Wait = 0;
                }
            }
        }
    }
}

/// <summary>
/// Keras' ModelCheckpoint: after every epoch (or, with saveBestOnly, only when the monitored value improves)
/// writes the weights (a plain weight file, as <see cref="WeightFile.Save(INetwork, string)"/>) or, with
/// weightsOnly false, a full <see cref="Checkpoint"/> to resume from. "{epoch}" in the path becomes the epoch.
/// The file is written once every callback has ended the epoch, so a full checkpoint holds the state of all of
/// them after it, wherever this one stands in the list. Writes are atomic: a crash leaves the previous file.
/// </summary>
public sealed class ModelCheckpoint(string path, string monitor = "val_loss", bool saveBestOnly = false, bool weightsOnly = false,
    MonitorMode mode = MonitorMode.Auto) : MonitorCallback(monitor, mode, 0)
{
    public string Path { get; } = path ?? throw new ArgumentNullException(nameof(path));
    public bool SaveBestOnly { get; } = saveBestOnly;
    public bool WeightsOnly { get; } = weightsOnly;

    /// <summary>How many files were written in this run.</summary>
    public int Saves { get; private set; }

    public override void OnTrainBegin(FitContext context)
    {
        base.OnTrainBegin(context);
        Saves = 0;
        _pending = null;
    }

    /// <summary>Writes a file still pending (when the callbacks are driven by a loop other than Fit's).</summary>
    public override void OnEpochBegin(FitContext context, int epoch) => WritePending(context);

    public override void OnTrainEnd(FitContext context) => WritePending(context);

    public override void OnEpochEnd(FitContext context, EpochRecord record)
    {
        if (SaveBestOnly)
        {
            double value = Current(record);
            if (!Improves(value))
                return;
            Best = value;
        }

        _pending = Path.Replace("{epoch}", record.Epoch.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);
    }

    private string? _pending;

    /// <summary>Writes the file <see cref="OnEpochEnd"/> decided on; Fit calls it after every callback's OnEpochEnd.</summary>
    internal void WritePending(FitContext context)
    {
        if (_pending is not string file)
            return;
        _pending = null;
        if (WeightsOnly)
            context.Network.Save(file);
        else
            Checkpoint.Save(file, context);
        Saves++;
    }
}
