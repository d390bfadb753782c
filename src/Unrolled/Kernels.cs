using System;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Unrolled;

/// <summary>
/// Which vector width generated kernels use. By default the widest the CPU accelerates: 512-bit (AVX-512),
/// then 256-bit (AVX2 with FMA), then the portable 128-bit path (SSE, NEON, or software).
/// Lower <see cref="MaxVectorBits"/> to compare paths (tests and benchmarks do); results agree to rounding.
/// </summary>
public static class Kernels
{
    private static int s_maxVectorBits = 512;

    /// <summary>The widest vectors generated code may use: 512, 256 or 128.</summary>
    public static int MaxVectorBits
    {
        get => s_maxVectorBits;
        set
        {
            if (value is not (512 or 256 or 128))
                throw new ArgumentOutOfRangeException(nameof(value), value, "MaxVectorBits must be 512, 256 or 128.");
            s_maxVectorBits = value;
        }
    }

    /// <summary>True when generated code takes its Vector512 path.</summary>
    public static bool Use512 => s_maxVectorBits >= 512 && Vector512.IsHardwareAccelerated && Avx512F.IsSupported;

    /// <summary>True when generated code takes its Vector256 path (when the 512-bit path is not taken).</summary>
    public static bool Use256 => s_maxVectorBits >= 256 && Vector256.IsHardwareAccelerated && Fma.IsSupported;

    /// <summary>The path generated code takes now: "Vector512", "Vector256" or "Vector128".</summary>
    public static string ActivePath => Use512 ? "Vector512" : Use256 ? "Vector256" : "Vector128";
}
