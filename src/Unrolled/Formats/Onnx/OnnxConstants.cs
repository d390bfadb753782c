using System;
using System.Collections.Generic;
using System.Linq;
using Unrolled.Formats.Onnx.Proto;

namespace Unrolled.Formats.Onnx;

/// <summary>A constant tensor met while importing: an initializer, a Constant node's value, or the result of
/// folding the small shape computations exporters emit (Shape, Gather, Concat, Slice, …). Floats or integers.</summary>
internal sealed class ConstTensor
{
    /// <summary>Stands for the batch size (unknown until run time) inside an integer shape tensor.</summary>
    public const long Batch = long.MinValue + 1;

    public ConstTensor(long[] dims, float[] floats) { Dims = dims; Floats = floats; }
    public ConstTensor(long[] dims, long[] ints) { Dims = dims; Ints = ints; }

    public long[] Dims { get; }
    public float[]? Floats { get; }
    public long[]? Ints { get; }
    public bool IsFloat => Floats is not null;
    public int Length => Floats?.Length ?? Ints!.Length;

    public ConstTensor WithDims(long[] dims) => IsFloat ? new ConstTensor(dims, Floats!) : new ConstTensor(dims, Ints!);

    /// <summary>A new tensor of the same kind whose element i is element map[i] of this one.</summary>
    public ConstTensor Gathered(long[] dims, int[] map)
    {
        if (IsFloat)
        {
            var f = new float[map.Length];
            for (int i = 0; i < map.Length; i++) f[i] = Floats![map[i]];
            return new ConstTensor(dims, f);
        }
        var l = new long[map.Length];
        for (int i = 0; i < map.Length; i++) l[i] = Ints![map[i]];
        return new ConstTensor(dims, l);
    }

    public long[] AsInts(Func<string, Exception> fail)
    {
        if (Ints is not null) return Ints;
        var r = new long[Floats!.Length];
        for (int i = 0; i < r.Length; i++)
        {
            float v = Floats[i];
            if (v != MathF.Floor(v) || !float.IsFinite(v)) throw fail("a float constant was used where integers are expected");
            r[i] = (long)v;
        }
        return r;
    }

    public float[] AsFloats()
    {
        if (Floats is not null) return Floats;
        var r = new float[Ints!.Length];
        for (int i = 0; i < r.Length; i++) r[i] = Ints[i];
        return r;
    }

    public static long[] Strides(long[] dims)
    {
        var s = new long[dims.Length];
        long m = 1;
        for (int i = dims.Length - 1; i >= 0; i--) { s[i] = m; m *= dims[i]; }
        return s;
    }

    public static long Product(IEnumerable<long> dims)
    {
        long p = 1;
        foreach (long d in dims) p = checked(p * d);
        return p;
    }
}

/// <summary>Decodes and checks initializers and Constant values, and folds the integer shape arithmetic
/// (Shape → Gather → Unsqueeze → Concat → Reshape, Pad's pads computed by ConstantOfShape/Slice/Transpose, …)
/// that exporters write around Reshape and Pad.</summary>
internal static class ConstFolding
{
    /// <summary>The most elements a single constant may hold (the generator's per-buffer limit).</summary>
    public const long MaxElements = 1L << 28;

    /// <summary>Decodes a tensor, checking its dims against its data before allocating anything.</summary>
    public static ConstTensor Decode(TensorProto t, Func<string, Exception> fail)
    {
        if (t.DataLocation == TensorProto.Types.DataLocation.External || t.ExternalData.Count > 0)
            throw fail($"tensor '{t.Name}' keeps its data in an external file, which the importer does not read (save the model with its weights inside)");
        if (t.Dims.Count > 8) throw fail($"tensor '{t.Name}' has {t.Dims.Count} dimensions");
        long count = 1;
        foreach (long d in t.Dims)
        {
            if (d < 0) throw fail($"tensor '{t.Name}' has a negative dimension {d}");
            if (d > MaxElements) throw fail($"tensor '{t.Name}' has an absurd dimension {d}");
            count *= d;
            if (count > MaxElements) throw fail($"tensor '{t.Name}' has dims [{string.Join(", ", t.Dims)}]: more than {MaxElements} elements");
        }
        long[] dims = t.Dims.ToArray();
        var type = (TensorProto.Types.DataType)t.DataType;
        int size = type switch
        {
            TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Int32 => 4,
            TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Double => 8,
            TensorProto.Types.DataType.Bool or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Int8 => 1,
            _ => throw fail($"tensor '{t.Name}' has data type {type}, which the importer does not read (float32, float64, int64, int32, int8, uint8 and bool are read)"),
        };
        int n = (int)count;
        ReadOnlySpan<byte> raw = t.RawData.Span;
        bool hasRaw = !t.RawData.IsEmpty;
        if (hasRaw && raw.Length != count * size)
            throw fail($"tensor '{t.Name}' has dims [{string.Join(", ", dims)}] ({count} elements of {size} bytes) but {raw.Length} bytes of data");
        switch (type)
        {
            case TensorProto.Types.DataType.Float:
            {
                if (!hasRaw && t.FloatData.Count != count)
                    throw fail($"tensor '{t.Name}' has dims [{string.Join(", ", dims)}] ({count} elements) but {t.FloatData.Count} float values");
                var f = new float[n];
                if (hasRaw) for (int i = 0; i < n; i++) f[i] = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(raw.Slice(i * 4));
                else t.FloatData.CopyTo(f, 0);
                return new ConstTensor(dims, f);
            }
            case TensorProto.Types.DataType.Double:
            {
                if (!hasRaw && t.DoubleData.Count != count)
                    throw fail($"tensor '{t.Name}' has dims [{string.Join(", ", dims)}] ({count} elements) but {t.DoubleData.Count} double values");
                var f = new float[n];
                for (int i = 0; i < n; i++)
                    f[i] = (float)(hasRaw ? System.Buffers.Binary.BinaryPrimitives.ReadDoubleLittleEndian(raw.Slice(i * 8)) : t.DoubleData[i]);
                return new ConstTensor(dims, f);
            }
            case TensorProto.Types.DataType.Int64:
            {
                if (!hasRaw && t.Int64Data.Count != count)
                    throw fail($"tensor '{t.Name}' has dims [{string.Join(", ", dims)}] ({count} elements) but {t.Int64Data.Count} int64 values");
                var l = new long[n];
                if (hasRaw) for (int i = 0; i < n; i++) l[i] = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(raw.Slice(i * 8));
                else t.Int64Data.CopyTo(l, 0);
                return new ConstTensor(dims, l);
            }
            default: // int32, int8, uint8, bool: int32_data holds them unpacked
            {
                if (!hasRaw && t.Int32Data.Count != count)
                    throw fail($"tensor '{t.Name}' has dims [{string.Join(", ", dims)}] ({count} elements) but {t.Int32Data.Count} int32 values");
                var l = new long[n];
                for (int i = 0; i < n; i++)
                    l[i] = !hasRaw ? t.Int32Data[i]
                        : size == 4 ? System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(raw.Slice(i * 4))
                        : type == TensorProto.Types.DataType.Int8 ? (sbyte)raw[i] : raw[i];
                return new ConstTensor(dims, l);
            }
        }
    }

    private static long Axis(long axis, int rank, Func<string, Exception> fail)
    {
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank) throw fail($"axis {axis} is out of range for rank {rank}");
        return a;
    }

    /// <summary>Folds one node whose inputs are all constant; <paramref name="node"/> gives its attributes.</summary>
    public static ConstTensor Fold(string op, IReadOnlyList<ConstTensor?> inputs, OnnxNodeView node, int opset, Func<string, Exception> fail)
    {
        ConstTensor In(int i) => i < inputs.Count && inputs[i] is { } t ? t : throw fail($"input {i} is missing");
        switch (op)
        {
            case "Identity":
                return In(0);
            case "Constant":
            {
                if (node.Tensor("value") is { } v) return Decode(v, fail);
                if (node.FloatOrNull("value_float") is float f) return new ConstTensor(Array.Empty<long>(), new[] { f });
                if (node.Has("value_floats")) { float[] fs = node.Floats("value_floats"); return new ConstTensor(new long[] { fs.Length }, fs); }
                if (node.IntOrNull("value_int") is long i) return new ConstTensor(Array.Empty<long>(), new[] { i });
                if (node.Has("value_ints")) { long[] ls = node.Ints("value_ints")!; return new ConstTensor(new long[] { ls.Length }, ls); }
                throw fail("a Constant without a dense tensor, float or int value (sparse and string constants are not read)");
            }
            case "Cast":
            {
                long to = node.Int("to", 0);
                ConstTensor x = In(0);
                if (to == (long)TensorProto.Types.DataType.Float || to == (long)TensorProto.Types.DataType.Double) return new ConstTensor(x.Dims, x.AsFloats());
                if (to is 6 or 7 or 2 or 3 or 9) return new ConstTensor(x.Dims, x.IsFloat ? x.Floats!.Select(v => (long)v).ToArray() : x.Ints!);
                throw fail($"Cast to data type {to}");
            }
            case "Shape":
                throw fail("Shape of a constant"); // handled by the caller for data values
            case "Unsqueeze":
            case "Squeeze":
            {
                ConstTensor x = In(0);
                long[]? axes = opset >= 13 ? (inputs.Count > 1 && inputs[1] is { } a ? a.AsInts(fail) : null) : node.Ints("axes");
                var dims = x.Dims.ToList();
                if (op == "Unsqueeze")
                {
                    if (axes is null) throw fail("Unsqueeze without axes");
                    int rank = dims.Count + axes.Length;
                    foreach (long ax in axes.Select(a => Axis(a, rank, fail)).OrderBy(a => a)) dims.Insert((int)ax, 1);
                }
                else
                {
                    var drop = axes is null ? Enumerable.Range(0, dims.Count).Where(i => dims[i] == 1).Select(i => (long)i).ToHashSet()
                        : axes.Select(a => Axis(a, dims.Count, fail)).ToHashSet();
                    foreach (long ax in drop) if (dims[(int)ax] != 1) throw fail($"Squeeze of axis {ax} of size {dims[(int)ax]}");
                    dims = dims.Where((_, i) => !drop.Contains(i)).ToList();
                }
                return x.WithDims(dims.ToArray());
            }
            case "Reshape":
            {
                ConstTensor x = In(0);
                long[] shape = In(1).AsInts(fail);
                return x.WithDims(ReshapeDims(x.Dims, shape, allowZero: node.Int("allowzero", 0) != 0, fail));
            }
            case "Flatten":
            {
                ConstTensor x = In(0);
                long axis = Axis(node.Int("axis", 1), x.Dims.Length + 1, fail);
                return x.WithDims(new[] { ConstTensor.Product(x.Dims.Take((int)axis)), ConstTensor.Product(x.Dims.Skip((int)axis)) });
            }
            case "Concat":
            {
                var parts = inputs.Where(t => t is not null).Select(t => t!).ToList();
                if (parts.Count == 0) throw fail("Concat of nothing");
                int rank = parts[0].Dims.Length;
                long axis = Axis(node.Int("axis", 0), rank, fail);
                if (parts.Any(p => p.Dims.Length != rank)) throw fail("Concat of tensors of different ranks");
                if (parts.Any(p => p.IsFloat != parts[0].IsFloat)) throw fail("Concat of floats and integers");
                long outer = ConstTensor.Product(parts[0].Dims.Take((int)axis));
                var dims = (long[])parts[0].Dims.Clone();
                dims[axis] = parts.Sum(p => p.Dims[axis]);
                var map = new List<int>();
                var offsets = new int[parts.Count];
                for (int i = 1; i < parts.Count; i++) offsets[i] = offsets[i - 1] + parts[i - 1].Length;
                var all = parts[0].IsFloat ? new ConstTensor(new long[] { parts.Sum(p => (long)p.Length) }, parts.SelectMany(p => p.Floats!).ToArray())
                    : new ConstTensor(new long[] { parts.Sum(p => (long)p.Length) }, parts.SelectMany(p => p.Ints!).ToArray());
                for (long o = 0; o < outer; o++)
                    for (int i = 0; i < parts.Count; i++)
                    {
                        long block = parts[i].Length / Math.Max(outer, 1);
                        for (long j = 0; j < block; j++) map.Add((int)(offsets[i] + o * block + j));
                    }
                return all.Gathered(dims, map.ToArray());
            }
            case "Gather":
            {
                ConstTensor x = In(0);
                long[] idx = In(1).AsInts(fail);
                long axis = Axis(node.Int("axis", 0), x.Dims.Length, fail);
                long[] st = ConstTensor.Strides(x.Dims);
                long outer = ConstTensor.Product(x.Dims.Take((int)axis)), inner = st[axis], size = x.Dims[axis];
                var map = new List<int>();
                for (long o = 0; o < outer; o++)
                    foreach (long i0 in idx)
                    {
                        long i = i0 < 0 ? i0 + size : i0;
                        if (i < 0 || i >= size) throw fail($"Gather index {i0} out of range for size {size}");
                        for (long j = 0; j < inner; j++) map.Add((int)(o * size * inner + i * inner + j));
                    }
                var dims = x.Dims.Take((int)axis).Concat(In(1).Dims).Concat(x.Dims.Skip((int)axis + 1)).ToArray();
                return x.Gathered(dims, map.ToArray());
            }
            case "Transpose":
            {
                ConstTensor x = In(0);
                int rank = x.Dims.Length;
                long[] perm = node.Ints("perm") ?? Enumerable.Range(0, rank).Reverse().Select(i => (long)i).ToArray();
                if (perm.Length != rank || perm.Distinct().Count() != rank || perm.Any(p => p < 0 || p >= rank)) throw fail("Transpose with an invalid perm");
                long[] dims = perm.Select(p => x.Dims[p]).ToArray();
                long[] inStrides = ConstTensor.Strides(x.Dims);
                var map = new int[x.Length];
                var index = new long[rank];
                for (int k = 0; k < map.Length; k++)
                {
                    long src = 0;
                    for (int d = 0; d < rank; d++) src += index[d] * inStrides[perm[d]];
                    map[k] = (int)src;
                    for (int d = rank - 1; d >= 0; d--) { if (++index[d] < dims[d]) break; index[d] = 0; }
                }
                return x.Gathered(dims, map);
            }
            case "Slice":
            {
                ConstTensor x = In(0);
                int rank = x.Dims.Length;
                long[] starts, ends, axes, steps;
                if (opset < 10)
                {
                    starts = node.Ints("starts") ?? throw fail("Slice without starts");
                    ends = node.Ints("ends") ?? throw fail("Slice without ends");
                    axes = node.Ints("axes") ?? Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
                    steps = Enumerable.Repeat(1L, starts.Length).ToArray();
                }
                else
                {
                    starts = In(1).AsInts(fail);
                    ends = In(2).AsInts(fail);
                    axes = inputs.Count > 3 && inputs[3] is { } a ? a.AsInts(fail) : Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
                    steps = inputs.Count > 4 && inputs[4] is { } s ? s.AsInts(fail) : Enumerable.Repeat(1L, starts.Length).ToArray();
                }
                if (ends.Length != starts.Length || axes.Length != starts.Length || steps.Length != starts.Length) throw fail("Slice with inputs of different lengths");
                var begin = new long[rank]; var step = Enumerable.Repeat(1L, rank).ToArray(); var count = (long[])x.Dims.Clone();
                for (int k = 0; k < starts.Length; k++)
                {
                    int ax = (int)Axis(axes[k], rank, fail);
                    long dim = x.Dims[ax], st = steps[k];
                    if (st == 0) throw fail("Slice with step 0");
                    long Clamp(long v, long lo, long hi) => Math.Max(lo, Math.Min(hi, v));
                    long b = starts[k] < 0 ? starts[k] + dim : starts[k];
                    long e = ends[k] < 0 && ends[k] > long.MinValue / 2 ? ends[k] + dim : ends[k];
                    if (ends[k] <= long.MinValue / 2) e = -1;
                    if (st > 0) { b = Clamp(b, 0, dim); e = Clamp(e, 0, dim); count[ax] = Math.Max(0, (e - b + st - 1) / st); }
                    else { b = Clamp(b, 0, dim - 1); e = Clamp(e, -1, dim - 1); count[ax] = Math.Max(0, (b - e + (-st) - 1) / (-st)); }
                    begin[ax] = b; step[ax] = st;
                }
                long[] inStrides = ConstTensor.Strides(x.Dims);
                long total = ConstTensor.Product(count);
                var map = new int[total];
                var index = new long[rank];
                for (long k = 0; k < total; k++)
                {
                    long src = 0;
                    for (int d = 0; d < rank; d++) src += (begin[d] + index[d] * step[d]) * inStrides[d];
                    map[k] = (int)src;
                    for (int d = rank - 1; d >= 0; d--) { if (++index[d] < count[d]) break; index[d] = 0; }
                }
                return x.Gathered(count, map);
            }
            case "ConstantOfShape":
            {
                long[] dims = In(0).AsInts(fail);
                if (dims.Any(d => d < 0 || d == ConstTensor.Batch)) throw fail("ConstantOfShape of a shape that depends on the batch");
                long n = ConstTensor.Product(dims);
                if (n > 1 << 20) throw fail($"ConstantOfShape of {n} elements");
                ConstTensor value = node.Tensor("value") is { } v ? Decode(v, fail) : new ConstTensor(new long[] { 1 }, new[] { 0f });
                if (value.Length != 1) throw fail("ConstantOfShape whose value is not a single element");
                return value.Gathered(dims, new int[n]);
            }
            case "Add": case "Sub": case "Mul": case "Div":
            {
                ConstTensor a = In(0), b = In(1);
                if (a.IsFloat || b.IsFloat) throw fail($"{op} of float constants (only integer shape arithmetic is folded)");
                if (a.Length != b.Length && a.Length != 1 && b.Length != 1) throw fail($"{op} of constants of different sizes");
                int n = Math.Max(a.Length, b.Length);
                var r = new long[n];
                for (int i = 0; i < n; i++)
                {
                    long x = a.Ints![a.Length == 1 ? 0 : i], y = b.Ints![b.Length == 1 ? 0 : i];
                    if (x == ConstTensor.Batch || y == ConstTensor.Batch) { r[i] = ConstTensor.Batch; continue; }
                    r[i] = op switch { "Add" => x + y, "Sub" => x - y, "Mul" => x * y, _ => y == 0 ? throw fail("division by zero") : x / y };
                }
                return new ConstTensor(a.Length >= b.Length ? a.Dims : b.Dims, r);
            }
            default:
                throw fail("an operator the importer cannot fold over constants");
        }
    }

    /// <summary>The dims a Reshape to <paramref name="shape"/> gives (0 copies, −1 infers; the batch marker stays).</summary>
    public static long[] ReshapeDims(long[] input, long[] shape, bool allowZero, Func<string, Exception> fail)
    {
        var dims = new long[shape.Length];
        int infer = -1;
        bool batchSeen = false;
        for (int i = 0; i < shape.Length; i++)
        {
            long s = shape[i];
            if (s == 0 && !allowZero)
            {
                if (i >= input.Length) throw fail("Reshape copies a dimension the input does not have");
                s = input[i];
            }
            if (s == -1) { if (infer >= 0) throw fail("Reshape with two −1"); infer = i; dims[i] = 1; continue; }
            if (s == ConstTensor.Batch) { batchSeen = true; dims[i] = s; continue; }
            if (s < 0) throw fail($"Reshape to a negative dimension {s}");
            dims[i] = s;
        }
        bool inputBatch = input.Contains(ConstTensor.Batch);
        if (batchSeen && !inputBatch) throw fail("Reshape that introduces the batch dimension");
        long inKnown = ConstTensor.Product(input.Where(d => d != ConstTensor.Batch));
        long outKnown = ConstTensor.Product(dims.Where(d => d != ConstTensor.Batch));
        if (infer >= 0 && inputBatch && !batchSeen && outKnown == inKnown)
        {
            dims[infer] = ConstTensor.Batch; // [-1, K]: the −1 is the batch
            return dims;
        }
        if (infer >= 0)
        {
            if (inputBatch && !batchSeen) throw fail("Reshape that folds the batch into another dimension");
            if (outKnown == 0 || inKnown % outKnown != 0) throw fail("Reshape whose −1 cannot be inferred");
            dims[infer] = inKnown / outKnown;
        }
        else if (inKnown != outKnown) throw fail($"Reshape of [{string.Join(", ", input)}] to [{string.Join(", ", dims)}]: the sizes differ");
        return dims;
    }
}
