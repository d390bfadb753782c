using System;

namespace Unrolled.Tests.Harness;

/// <summary>Limits generated kernels to a vector width (<see cref="Kernels.MaxVectorBits"/>) until disposed, then
/// restores the width that was set before. The switch is global: tests that use it must not run in parallel.</summary>
public sealed class VectorWidth : IDisposable
{
    private readonly int _saved;

    private VectorWidth(int bits)
    {
        _saved = Kernels.MaxVectorBits;
        Kernels.MaxVectorBits = bits;
    }

    public static VectorWidth Limit(int bits) => new(bits);

    public void Dispose() => Kernels.MaxVectorBits = _saved;
}
