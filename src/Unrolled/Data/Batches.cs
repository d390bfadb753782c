using System;

namespace Unrolled.Data;

/// <summary>
/// Gathers samples into one reusable batch buffer in a given order (shuffled for training, identity for
/// evaluation). Used by <see cref="NetworkFit.Fit"/> for training and validation; allocates only in its
/// constructor.
/// </summary>
public sealed class Batches
{
    private readonly int _sampleSize;
    private readonly float[] _inputs;
    private readonly int[] _labels;

    public Batches(int sampleSize, int batchSize, int sampleCount)
    {
        if (sampleSize < 1)
            throw new ArgumentOutOfRangeException(nameof(sampleSize), sampleSize, "A sample holds at least 1 float.");
        if (batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "The batch size must be at least 1.");
        if (sampleCount < 0)
            throw new ArgumentOutOfRangeException(nameof(sampleCount), sampleCount, "The sample count cannot be negative.");
        _sampleSize = sampleSize;
        BatchSize = batchSize;
        SampleCount = sampleCount;
        Order = new int[sampleCount];
        ResetOrder();
        _inputs = new float[checked(sampleSize * batchSize)];
        _labels = new int[batchSize];
    }

    public int BatchSize { get; }

    public int SampleCount { get; }

    /// <summary>The sample order; <see cref="Shuffle"/> permutes it, <see cref="ResetOrder"/> restores 0, 1, 2, ….</summary>
    public int[] Order { get; }

    /// <summary>The number of batches: whole ones only when <paramref name="dropLast"/>, otherwise the last may be short.</summary>
    public int Count(bool dropLast) => dropLast ? SampleCount / BatchSize : (SampleCount + BatchSize - 1) / BatchSize;

    public void ResetOrder()
    {
        for (int i = 0; i < Order.Length; i++)
            Order[i] = i;
    }

    public void Shuffle(ref ShuffleRandom random) => random.Shuffle(Order);

    /// <summary>
    /// Copies batch <paramref name="index"/> (in <see cref="Order"/>) of the data set into the buffer and returns
    /// views of its inputs and labels, as long as the batch (the last one may be short).
    /// </summary>
    public int Fill(ReadOnlySpan<float> inputs, ReadOnlySpan<int> labels, int index, out Span<float> batchInputs, out Span<int> batchLabels)
    {
        int start = index * BatchSize;
        if ((uint)index >= (uint)Count(dropLast: false))
            throw new ArgumentOutOfRangeException(nameof(index), index, $"There are {Count(false)} batches.");
        int count = Math.Min(BatchSize, SampleCount - start);
        for (int b = 0; b < count; b++)
        {
            int sample = Order[start + b];
            inputs.Slice(sample * _sampleSize, _sampleSize).CopyTo(_inputs.AsSpan(b * _sampleSize, _sampleSize));
            _labels[b] = labels[sample];
        }

        batchInputs = _inputs.AsSpan(0, count * _sampleSize);
        batchLabels = _labels.AsSpan(0, count);
        return count;
    }
}
