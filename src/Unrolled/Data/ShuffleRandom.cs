using System;

namespace Unrolled.Data;

/// <summary>
/// SplitMix64 with its whole state in <see cref="State"/>, so a checkpoint can save it and a resumed run
/// shuffles exactly as the uninterrupted one would.
/// </summary>
public struct ShuffleRandom
{
    public ShuffleRandom(ulong seed) => State = seed ^ 0x243F6A8885A308D3UL;

    /// <summary>The generator's whole state.</summary>
    public ulong State { get; set; }

    public ulong NextUInt64()
    {
        ulong z = State += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A uniform integer in [0, bound) (Lemire's multiply-shift, with rejection, so unbiased).</summary>
    public int Next(int bound)
    {
        if (bound <= 0)
            throw new ArgumentOutOfRangeException(nameof(bound), bound, "The bound must be at least 1.");
        ulong limit = (ulong)bound;
        ulong threshold = (0UL - limit) % limit;
        while (true)
        {
            ulong r = NextUInt64();
            UInt128 product = (UInt128)r * limit;
            if ((ulong)product >= threshold)
                return (int)(product >> 64);
        }
    }

    /// <summary>Fisher–Yates shuffle.</summary>
    public void Shuffle(Span<int> values)
    {
        for (int i = values.Length - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (values[i], values[j]) = (values[j], values[i]);
        }
    }
}
