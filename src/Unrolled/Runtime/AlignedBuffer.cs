using System;
using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Unrolled.Runtime;

/// <summary>Zero-initialised float memory on the pinned heap, aligned to 64 bytes so vector loads never split
/// cache lines. Used by generated code for workspaces; the GC frees it with the owning network.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed unsafe class AlignedBuffer
{
    private const int AlignFloats = 16;
    private readonly float[] _array;

    public AlignedBuffer(long length)
    {
        if (length < 0 || length > Array.MaxLength - AlignFloats)
            throw new OutOfMemoryException($"A workspace of {length} floats is larger than a .NET array allows; use a smaller batch.");
        Length = (int)length;
        _array = GC.AllocateArray<float>(Length + AlignFloats, pinned: true);
        nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
        nint aligned = (start + 63) & ~(nint)63;
        Pointer = (float*)aligned;
    }

    /// <summary>The first float, 64-byte aligned; valid while this object is alive.</summary>
    public float* Pointer { get; }

    /// <summary>Usable floats from <see cref="Pointer"/>.</summary>
    public int Length { get; }

    public Span<float> Span => new(Pointer, Length);

    /// <summary>Returns <paramref name="buffer"/> when it holds at least <paramref name="length"/> floats, else a new one.</summary>
    public static AlignedBuffer Ensure(ref AlignedBuffer? buffer, long length)
    {
        if (buffer is null || buffer.Length < length) buffer = new AlignedBuffer(length);
        return buffer;
    }
}
