using System;
using System.ComponentModel;
using System.Runtime.CompilerServices;

namespace Unrolled.Runtime;

/// <summary>
/// Small deterministic random streams (SplitMix64). A stream is keyed by (seed, purpose, a, b), so the
/// numbers a layer draws for a sample never depend on threads or on the order of work.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public struct Rng
{
    private ulong _state;

    public Rng(ulong seed, ulong purpose, ulong a = 0, ulong b = 0)
    {
        _state = Mix(Mix(Mix(seed ^ 0x6A09E667F3BCC909UL) ^ purpose) ^ a);
        _state = Mix(_state ^ b);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextUInt64()
    {
        ulong z = (_state += 0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 24 random bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float NextSingle() => (NextUInt64() >> 40) * (1.0f / (1 << 24));

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Fills <paramref name="values"/> uniformly in [−bound, bound] (PyTorch's default Conv2d/Linear init).</summary>
    public static void FillUniform(Span<float> values, double bound, ulong seed, ulong tensor)
    {
        var rng = new Rng(seed, 1, tensor);
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)((rng.NextUInt64() >> 11) * (1.0 / (1UL << 53)) * 2 * bound - bound);
    }

    /// <summary>Writes an inverted-dropout mask: 1/(1−p) with probability 1−p, else 0.</summary>
    public static unsafe void FillDropoutMask(float* mask, int count, float p, ulong seed, int layer, long step, int sample)
    {
        var rng = new Rng(seed, 2 + ((ulong)layer << 8), (ulong)step, (ulong)sample);
        float scale = 1f / (1f - p);
        for (int i = 0; i < count; i++)
            mask[i] = rng.NextSingle() >= p ? scale : 0f;
    }
}
