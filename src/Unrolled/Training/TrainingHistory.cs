using System;
using System.Buffers;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using System.Text.Json;

namespace Unrolled;

/// <summary>One epoch of <see cref="NetworkFit.Fit"/>. Accuracy and validation values are NaN when not measured.</summary>
public readonly record struct EpochRecord(
    int Epoch, double Loss, double Accuracy, double ValidationLoss, double ValidationAccuracy,
    float LearningRate, double Seconds, double ImagesPerSecond)
{
    /// <summary>A metric by its Keras name: loss, accuracy, val_loss, val_accuracy (also acc, val_acc).</summary>
    public double Metric(string name) => name switch
    {
        "loss" => Loss,
        "accuracy" or "acc" => Accuracy,
        "val_loss" => ValidationLoss,
        "val_accuracy" or "val_acc" => ValidationAccuracy,
        _ => throw new ArgumentException($"Unknown metric '{name}': use loss, accuracy, val_loss or val_accuracy.", nameof(name)),
    };
}

/// <summary>The per-epoch results of a run (Keras' History), savable as CSV and JSON without reflection.</summary>
public sealed class TrainingHistory
{
    private readonly List<EpochRecord> _epochs;

    public TrainingHistory() : this(0) { }

    /// <summary>Room for <paramref name="capacity"/> epochs, so adding them does not allocate.</summary>
    public TrainingHistory(int capacity) => _epochs = new List<EpochRecord>(Math.Max(0, capacity));

    public IReadOnlyList<EpochRecord> Epochs => _epochs;

    public int Count => _epochs.Count;

    public EpochRecord this[int index] => _epochs[index];

    public void Add(EpochRecord record) => _epochs.Add(record);

    internal void TruncateTo(int count) => _epochs.RemoveRange(count, _epochs.Count - count);

    public const string CsvHeader = "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds,images_per_second";

    public string ToCsv()
    {
        var text = new StringBuilder(CsvHeader).Append('\n');
        foreach (EpochRecord e in _epochs)
        {
            text.Append(e.Epoch.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(Format(e.Loss)).Append(',').Append(Format(e.Accuracy)).Append(',')
                .Append(Format(e.ValidationLoss)).Append(',').Append(Format(e.ValidationAccuracy)).Append(',')
                .Append(e.LearningRate.ToString("R", CultureInfo.InvariantCulture)).Append(',')
                .Append(Format(e.Seconds)).Append(',').Append(Format(e.ImagesPerSecond)).Append('\n');
        }

        return text.ToString();
    }

    private static string Format(double value) => double.IsNaN(value) ? "" : value.ToString("R", CultureInfo.InvariantCulture);

    public void SaveCsv(string path) => File.WriteAllText(path, ToCsv());

    /// <summary>{"epochs":[{"epoch":1,"loss":…,…}]}; NaN values are written as null.</summary>
    public string ToJson()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartArray("epochs");
            foreach (EpochRecord e in _epochs)
            {
                json.WriteStartObject();
                json.WriteNumber("epoch", e.Epoch);
                Write(json, "loss", e.Loss);
                Write(json, "accuracy", e.Accuracy);
                Write(json, "val_loss", e.ValidationLoss);
                Write(json, "val_accuracy", e.ValidationAccuracy);
                Write(json, "learning_rate", e.LearningRate);
                Write(json, "seconds", e.Seconds);
                Write(json, "images_per_second", e.ImagesPerSecond);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void Write(Utf8JsonWriter json, string name, double value)
    {
        if (double.IsFinite(value))
            json.WriteNumber(name, value);
        else
            json.WriteNull(name);
    }

    public void SaveJson(string path) => File.WriteAllText(path, ToJson());

    /// <summary>Reads what <see cref="ToJson"/> wrote.</summary>
    public static TrainingHistory FromJson(string text)
    {
        var history = new TrainingHistory();
        using JsonDocument document = JsonDocument.Parse(text);
        foreach (JsonElement e in document.RootElement.GetProperty("epochs").EnumerateArray())
        {
            history.Add(new EpochRecord(
                e.GetProperty("epoch").GetInt32(), Read(e, "loss"), Read(e, "accuracy"), Read(e, "val_loss"),
                Read(e, "val_accuracy"), (float)Read(e, "learning_rate"), Read(e, "seconds"), Read(e, "images_per_second")));
        }

        return history;
    }

    private static double Read(JsonElement e, string name) =>
        e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : double.NaN;
}
