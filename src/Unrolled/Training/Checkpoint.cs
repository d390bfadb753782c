using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Unrolled.Data;

namespace Unrolled;

/// <summary>
/// A resumable training checkpoint: one safetensors file whose tensors are exactly the weight file's (so
/// <see cref="WeightFile.Load(INetwork, string)"/> and PyTorch's load_state_dict(strict=True) read it as
/// today), with the rest of the run in metadata keys under "unrolled.checkpoint.": the optimizer's state
/// (step count, rate, moments as little-endian base64), the schedule position (epochs done and
/// ReduceLROnPlateau's scale), the shuffle generator's state, the history, whether a callback stopped the run, and
/// each callback's own state (<see cref="FitCallback.SaveState"/>: EarlyStopping's and ReduceLROnPlateau's waits and
/// best values, EarlyStopping's best weights, ModelCheckpoint's best value) under "unrolled.checkpoint.callback.".
/// Written atomically: a temp file in the same folder, flushed to disk, then renamed over the old one.
/// </summary>
public static class Checkpoint
{
    public const string Prefix = "unrolled.checkpoint.";
    private const string MetadataKey = "__metadata__";

    /// <summary>
    /// Writes the checkpoint of a run in progress (what a full <see cref="ModelCheckpoint"/> writes), with the state of
    /// every callback as it is now: called from a callback's OnEpochEnd, the callbacks after it have not yet ended the
    /// epoch, so a resume would replay their part of it; ModelCheckpoint therefore writes once all of them have.
    /// </summary>
    public static void Save(string path, FitContext context)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(context);
        INetwork network = context.Network;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [Prefix + "version"] = "1",
            [Prefix + "epoch"] = Invariant(context.CompletedEpochs),
            [Prefix + "shuffle_state"] = context.Random.State.ToString(CultureInfo.InvariantCulture),
            [Prefix + "learning_rate_scale"] = context.LearningRateScale.ToString("R", CultureInfo.InvariantCulture),
            [Prefix + "base_learning_rate"] = context.BaseLearningRate.ToString("R", CultureInfo.InvariantCulture),
            [Prefix + "history"] = context.History.ToJson(),
        };
        NetworkRandomState random = network.RandomState;
        metadata[Prefix + "network.seed"] = random.Seed.ToString(CultureInfo.InvariantCulture);
        metadata[Prefix + "network.training_steps"] = Invariant(random.TrainingSteps);
        OptimizerState state = context.Optimizer.ExportState();
        metadata[Prefix + "optimizer.kind"] = state.Kind;
        metadata[Prefix + "optimizer.step_count"] = Invariant(state.StepCount);
        metadata[Prefix + "optimizer.learning_rate"] = state.LearningRate.ToString("R", CultureInfo.InvariantCulture);
        metadata[Prefix + "optimizer.parameter_count"] = Invariant(state.ParameterCount);
        foreach (var (name, values) in state.Arrays)
            metadata[Prefix + "optimizer.array." + name] = ToBase64(values);
        if (context.StopTraining)
            metadata[Prefix + "stop_training"] = "true";

        // Each callback's state under its type name and its place among the callbacks of that type.
        IReadOnlyList<FitCallback> callbacks = context.Options.Callbacks;
        var occurrences = new Dictionary<string, int>(StringComparer.Ordinal);
        var callbackState = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int c = 0; c < callbacks.Count; c++)
        {
            string key = CallbackKey(callbacks[c], occurrences);
            callbackState.Clear();
            callbacks[c].SaveState(callbackState);
            foreach (var (name, value) in callbackState)
            {
                ArgumentNullException.ThrowIfNull(value, name);
                metadata[key + name] = value;
            }
        }

        byte[] file = WithMetadata(network, metadata);
        WriteAtomically(path, file);
    }

    private const string CallbackPrefix = Prefix + "callback.";

    /// <summary>"unrolled.checkpoint.callback.{type}.{n}." for the n-th (from 0) callback of its type in the list.</summary>
    private static string CallbackKey(FitCallback callback, Dictionary<string, int> occurrences)
    {
        string type = callback.GetType().Name;
        occurrences.TryGetValue(type, out int n);
        occurrences[type] = n + 1;
        return string.Create(CultureInfo.InvariantCulture, $"{CallbackPrefix}{type}.{n}.");
    }

    /// <summary>Gives each callback of <paramref name="context"/> the state a resumed checkpoint holds for it (after OnTrainBegin).</summary>
    internal static void RestoreCallbacks(FitContext context)
    {
        if (context.ResumedCallbackState is not { } saved)
            return;
        context.ResumedCallbackState = null;
        IReadOnlyList<FitCallback> callbacks = context.Options.Callbacks;
        var occurrences = new Dictionary<string, int>(StringComparer.Ordinal);
        var state = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int c = 0; c < callbacks.Count; c++)
        {
            string key = CallbackKey(callbacks[c], occurrences);
            state.Clear();
            foreach (var (name, value) in saved)
            {
                if (name.StartsWith(key, StringComparison.Ordinal))
                    state[name[key.Length..]] = value;
            }

            if (state.Count == 0)
                continue;
            try
            {
                callbacks[c].LoadState(state);
            }
            catch (Exception e) when (e is FormatException or OverflowException)
            {
                throw new WeightFileException(context.Options.ResumeFrom ?? "<checkpoint>",
                    new[] { $"The state of callback {c} ({callbacks[c].GetType().Name}) is invalid: {e.Message}" });
            }
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to a temp file beside <paramref name="path"/>, flushes it to disk and renames it over <paramref name="path"/>.</summary>
    internal static void WriteAtomically(string path, ReadOnlySpan<byte> bytes)
    {
        string fullPath = Path.GetFullPath(path);
        string temporary = Path.Combine(Path.GetDirectoryName(fullPath)!, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, fullPath, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
        }
    }

    /// <summary>Loads the weights, buffers and counters into <paramref name="network"/> and the rest into the run.</summary>
    internal static void Load(string path, INetwork network, Optimizer optimizer, FitContext context)
    {
        Dictionary<string, string> metadata = ReadMetadata(path);
        string Get(string key) => metadata.TryGetValue(Prefix + key, out string? value)
            ? value
            : throw new WeightFileException(path, new[] { $"'{Prefix}{key}' is missing from the metadata: this is a weight file, not a checkpoint." });

        try
        {
            if (Get("version") != "1")
                throw new FormatException($"version {Get("version")} is not supported.");
            int epoch = int.Parse(Get("epoch"), CultureInfo.InvariantCulture);
            ulong shuffle = ulong.Parse(Get("shuffle_state"), CultureInfo.InvariantCulture);
            double scale = double.Parse(Get("learning_rate_scale"), CultureInfo.InvariantCulture);
            float baseRate = float.Parse(Get("base_learning_rate"), CultureInfo.InvariantCulture);
            TrainingHistory history = TrainingHistory.FromJson(Get("history"));
            var arrays = new Dictionary<string, float[]>(StringComparer.Ordinal);
            string arrayPrefix = Prefix + "optimizer.array.";
            foreach (var (key, value) in metadata)
            {
                if (key.StartsWith(arrayPrefix, StringComparison.Ordinal))
                    arrays[key[arrayPrefix.Length..]] = FloatsFromBase64(value);
            }

            var state = new OptimizerState(Get("optimizer.kind"), long.Parse(Get("optimizer.step_count"), CultureInfo.InvariantCulture),
                float.Parse(Get("optimizer.learning_rate"), CultureInfo.InvariantCulture),
                int.Parse(Get("optimizer.parameter_count"), CultureInfo.InvariantCulture), arrays);
            if (history.Count != epoch)
                throw new FormatException($"the history holds {history.Count} epochs but the checkpoint is after epoch {epoch}.");
            bool stopped = metadata.TryGetValue(Prefix + "stop_training", out string? stop) && bool.Parse(stop);
            // The dropout masks' state; checkpoints written before it was saved resume without it.
            NetworkRandomState? random = metadata.TryGetValue(Prefix + "network.seed", out string? seedText)
                ? new NetworkRandomState(ulong.Parse(seedText, CultureInfo.InvariantCulture), long.Parse(Get("network.training_steps"), CultureInfo.InvariantCulture))
                : null;
            var callbackState = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (key, value) in metadata)
            {
                if (key.StartsWith(CallbackPrefix, StringComparison.Ordinal))
                    callbackState[key] = value;
            }

            // Everything parsed: now change the network and the optimizer.
            network.Load(path);
            optimizer.ImportState(state);
            if (random is { } r) network.RandomState = r;
            context.CompletedEpochs = epoch;
            context.Random.State = shuffle;
            context.LearningRateScale = scale;
            context.BaseLearningRate = baseRate;
            context.StopTraining = stopped;
            context.ResumedCallbackState = callbackState;
            context.History.TruncateTo(0);
            foreach (EpochRecord record in history.Epochs)
                context.History.Add(record);
        }
        catch (Exception e) when (e is FormatException or OverflowException or JsonException or KeyNotFoundException or ArgumentException and not ArgumentNullException)
        {
            throw new WeightFileException(path, new[] { $"The checkpoint state is invalid: {e.Message}" });
        }
    }

    /// <summary>The __metadata__ strings of a safetensors file.</summary>
    public static Dictionary<string, string> ReadMetadata(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (length > WeightFile.MaxHeaderLength || (long)length > stream.Length - 8)
            throw new WeightFileException(path, new[] { $"The header length {length} does not fit the file." });
        byte[] header = new byte[(int)length];
        stream.ReadExactly(header);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        using JsonDocument document = JsonDocument.Parse(header);
        if (document.RootElement.TryGetProperty(MetadataKey, out JsonElement metadata) && metadata.ValueKind == JsonValueKind.Object)
        {
            foreach (JsonProperty item in metadata.EnumerateObject())
            {
                if (item.Value.ValueKind == JsonValueKind.String)
                    result[item.Name] = item.Value.GetString()!;
            }
        }

        return result;
    }

    /// <summary>The network's weight file with <paramref name="extra"/> merged into its metadata (tensor offsets are unchanged).</summary>
    private static byte[] WithMetadata(INetwork network, IReadOnlyDictionary<string, string> extra)
    {
        var plain = new MemoryStream();
        network.Save(plain);
        byte[] bytes = plain.GetBuffer();
        int total = (int)plain.Length;
        int headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        var buffer = new ArrayBufferWriter<byte>();
        using (JsonDocument document = JsonDocument.Parse(bytes.AsMemory(8, headerLength)))
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                if (property.NameEquals(MetadataKey))
                {
                    json.WriteStartObject(MetadataKey);
                    foreach (JsonProperty item in property.Value.EnumerateObject())
                        item.WriteTo(json);
                    foreach (var (key, value) in extra)
                        json.WriteString(key, value);
                    json.WriteEndObject();
                }
                else
                {
                    property.WriteTo(json);
                }
            }

            json.WriteEndObject();
        }

        int padding = (8 - buffer.WrittenCount % 8) % 8;
        buffer.GetSpan(padding)[..padding].Fill((byte)' ');
        buffer.Advance(padding);
        int dataLength = total - 8 - headerLength;
        var file = new byte[8 + buffer.WrittenCount + dataLength];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)buffer.WrittenCount);
        buffer.WrittenSpan.CopyTo(file.AsSpan(8));
        bytes.AsSpan(8 + headerLength, dataLength).CopyTo(file.AsSpan(8 + buffer.WrittenCount));
        return file;
    }

    private static string Invariant(long value) => value.ToString(CultureInfo.InvariantCulture);

    internal static string ToBase64(float[] values)
    {
        if (BitConverter.IsLittleEndian)
            return Convert.ToBase64String(MemoryMarshal.AsBytes(values.AsSpan()));
        int[] swapped = new int[values.Length];
        BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<float, int>(values.AsSpan()), swapped);
        return Convert.ToBase64String(MemoryMarshal.AsBytes(swapped.AsSpan()));
    }

    internal static string ToBase64(long[] values)
    {
        if (BitConverter.IsLittleEndian)
            return Convert.ToBase64String(MemoryMarshal.AsBytes(values.AsSpan()));
        long[] swapped = new long[values.Length];
        BinaryPrimitives.ReverseEndianness(values, swapped);
        return Convert.ToBase64String(MemoryMarshal.AsBytes(swapped.AsSpan()));
    }

    internal static long[] LongsFromBase64(string text)
    {
        byte[] bytes = Convert.FromBase64String(text);
        if (bytes.Length % 8 != 0)
            throw new FormatException("an array of counters is not a whole number of 64-bit integers.");
        long[] values = new long[bytes.Length / 8];
        MemoryMarshal.Cast<byte, long>(bytes).CopyTo(values);
        if (!BitConverter.IsLittleEndian)
            BinaryPrimitives.ReverseEndianness(values, values);
        return values;
    }

    internal static float[] FloatsFromBase64(string text)
    {
        byte[] bytes = Convert.FromBase64String(text);
        if (bytes.Length % 4 != 0)
            throw new FormatException("an array is not a whole number of floats.");
        float[] values = new float[bytes.Length / 4];
        Span<int> destination = MemoryMarshal.Cast<float, int>(values.AsSpan());
        MemoryMarshal.Cast<byte, int>(bytes).CopyTo(destination);
        if (!BitConverter.IsLittleEndian)
            BinaryPrimitives.ReverseEndianness(destination, destination);
        return values;
    }
}
