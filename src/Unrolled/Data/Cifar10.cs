using System;
using System.Collections.Generic;
using System.IO;

namespace Unrolled.Data;

/// <summary>A CIFAR-10 file could not be read; <see cref="FileName"/> names it.</summary>
public sealed class Cifar10FormatException(string fileName, string message)
    : Exception($"{fileName}: {message}")
{
    public string FileName { get; } = fileName;
}

/// <summary>CIFAR-10 images as 3×32×32 floats in [0, 1] (optionally normalised per channel) with their labels.</summary>
public sealed class Cifar10Set
{
    internal Cifar10Set(float[] images, int[] labels)
    {
        Images = images;
        Labels = labels;
    }

    public float[] Images { get; }
    public int[] Labels { get; }
    public int Count => Labels.Length;
}

/// <summary>
/// Reads the CIFAR-10 binary version: records of 3,073 bytes, a label byte (0–9) then 1,024 red, 1,024 green
/// and 1,024 blue bytes, row-major, in data_batch_1.bin … data_batch_5.bin and test_batch.bin.
/// </summary>
public static class Cifar10
{
    public const int Channels = 3, Height = 32, Width = 32, Classes = 10;
    public const int ImageSize = Channels * Height * Width;
    public const int RecordSize = 1 + ImageSize;

    /// <summary>The usual per-channel means and standard deviations of the training set.</summary>
    public static readonly float[] TrainMean = { 0.4914f, 0.4822f, 0.4465f };
    public static readonly float[] TrainStd = { 0.2470f, 0.2435f, 0.2616f };

    public static readonly string[] TrainFiles = { "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin" };
    public const string TestFile = "test_batch.bin";

    public static readonly string[] ClassNames = { "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" };

    /// <summary>
    /// Reads the files, in order, into one set. Every file is checked (whole records, labels 0–9) before any
    /// image is converted, so a bad file throws <see cref="Cifar10FormatException"/> naming it and nothing is
    /// returned half loaded. With <paramref name="mean"/> and <paramref name="std"/> (3 values each) every
    /// channel becomes (x − mean) / std.
    /// </summary>
    public static Cifar10Set Read(IReadOnlyList<string> paths, float[]? mean = null, float[]? std = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        if ((mean is null) != (std is null))
            throw new ArgumentException("Give both the means and the standard deviations, or neither.", nameof(mean));
        if (mean is not null && (mean.Length != Channels || std!.Length != Channels))
            throw new ArgumentException($"The means and standard deviations need {Channels} values each.", nameof(mean));
        if (std is not null)
        {
            foreach (float s in std)
            {
                if (!(s > 0) || !float.IsFinite(s))
                    throw new ArgumentOutOfRangeException(nameof(std), s, "A standard deviation must be finite and greater than 0.");
            }
        }

        var contents = new List<byte[]>(paths.Count);
        long records = 0;
        foreach (string path in paths)
        {
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new Cifar10FormatException(path, $"cannot be read: {e.Message}");
            }

            if (bytes.Length == 0)
                throw new Cifar10FormatException(path, "the file is empty.");
            if (bytes.Length % RecordSize != 0)
            {
                throw new Cifar10FormatException(path,
                    $"{bytes.Length:N0} bytes is not a whole number of {RecordSize:N0}-byte records: record {bytes.Length / RecordSize + 1} is truncated to {bytes.Length % RecordSize:N0} bytes.");
            }

            for (int r = 0; r < bytes.Length / RecordSize; r++)
            {
                byte label = bytes[r * RecordSize];
                if (label >= Classes)
                    throw new Cifar10FormatException(path, $"record {r + 1} has label {label}, outside 0–9.");
            }

            contents.Add(bytes);
            records += bytes.Length / RecordSize;
        }

        int count = checked((int)records);
        var images = new float[checked(count * ImageSize)];
        var labels = new int[count];
        int n = 0;
        Span<float> scale = stackalloc float[Channels];
        Span<float> offset = stackalloc float[Channels];
        for (int c = 0; c < Channels; c++)
        {
            // (b / 255 − mean) / std as b · scale + offset.
            float s = std is null ? 1f : std[c];
            float m = mean is null ? 0f : mean[c];
            scale[c] = 1f / (255f * s);
            offset[c] = -m / s;
        }

        foreach (byte[] bytes in contents)
        {
            for (int r = 0; r < bytes.Length / RecordSize; r++, n++)
            {
                labels[n] = bytes[r * RecordSize];
                ReadOnlySpan<byte> pixels = bytes.AsSpan(r * RecordSize + 1, ImageSize);
                Span<float> image = images.AsSpan(n * ImageSize, ImageSize);
                for (int c = 0; c < Channels; c++)
                {
                    int plane = c * Height * Width;
                    for (int i = 0; i < Height * Width; i++)
                        image[plane + i] = mean is null ? pixels[plane + i] / 255f : pixels[plane + i] * scale[c] + offset[c];
                }
            }
        }

        return new Cifar10Set(images, labels);
    }

    /// <summary>The training set (data_batch_1..5.bin) and the test set (test_batch.bin) from a directory.</summary>
    public static (Cifar10Set Train, Cifar10Set Test) Load(string directory, bool normalize = false)
    {
        var train = new List<string>();
        foreach (string name in TrainFiles)
            train.Add(Path.Combine(directory, name));
        float[]? mean = normalize ? TrainMean : null, std = normalize ? TrainStd : null;
        return (Read(train, mean, std), Read(new[] { Path.Combine(directory, TestFile) }, mean, std));
    }
}
