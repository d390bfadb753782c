using System;
using System.Buffers;
using System.ComponentModel;
using System.Runtime.Intrinsics;

namespace Unrolled.Runtime;

/// <summary>
/// Pooling of any window, stride and padding (the generated code keeps its own branch-free kernels for 2×2/2),
/// and LocalResponseNorm, shared by all generated networks. Separable: a window's rows are combined first, a
/// whole input row at a time in vectors, then each output takes its window's columns from that one row, so a
/// K×K window costs K vector steps per input row and K scalar steps per output instead of K² scalar steps.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class Pooling
{
    // Rows up to this many floats are combined in a stack buffer; longer ones in a pooled array.
    private const int StackFloats = 4096;

    /// <summary>
    /// One sample's max or average pooling, C channels of H×W into Ho×Wo, a K×K window with stride S, padTop and
    /// padLeft cells of padding before the first row and column. Padded cells never win a maximum; an average
    /// divides by K² (<paramref name="realCells"/> false: PyTorch's count_include_pad) or by the window's real cells.
    /// </summary>
    public static void Forward(float* x, float* y, int C, int H, int W, int Ho, int Wo, int K, int S, int padTop, int padLeft, bool max, bool realCells)
    {
        int length = RowLength(W, Wo, K, S, padLeft);
        float[]? rented = null;
        float* stack = stackalloc float[length <= StackFloats ? length : 0];
        if (length > StackFloats) rented = ArrayPool<float>.Shared.Rent(length);
        try
        {
            fixed (float* heap = rented)
            {
                float* t = rented is null ? stack : heap;
                // Cells outside the input (padding, in t's coordinates before padLeft and from padLeft + W) never change.
                float border = max ? float.NegativeInfinity : 0f;
                new Span<float>(t, length).Fill(border);
                float* row = t + padLeft;
                float inverse = 1f / ((float)K * K);
                for (int c = 0; c < C; c++)
                {
                    float* xc = x + (long)c * H * W, yc = y + (long)c * Ho * Wo;
                    for (int oy = 0; oy < Ho; oy++)
                    {
                        int y0 = oy * S - padTop, y1 = Math.Min(y0 + K, H);
                        if (y0 < 0) y0 = 0;
                        Buffer.MemoryCopy(xc + (long)y0 * W, row, (long)W * sizeof(float), (long)W * sizeof(float));
                        for (int iy = y0 + 1; iy < y1; iy++)
                            if (max) MaxInto(row, xc + (long)iy * W, W);
                            else AddInto(row, xc + (long)iy * W, W);
                        float* o = yc + (long)oy * Wo;
                        for (int ox = 0; ox < Wo; ox++)
                        {
                            float* cell = t + (long)ox * S;
                            float acc = cell[0];
                            if (max) for (int k = 1; k < K; k++) acc = MathF.Max(acc, cell[k]); // NaN stays NaN
                            else for (int k = 1; k < K; k++) acc += cell[k];
                            if (max) o[ox] = acc;
                            else if (!realCells) o[ox] = acc * inverse;
                            else
                            {
                                int x0 = ox * S - padLeft, x1 = Math.Min(x0 + K, W);
                                if (x0 < 0) x0 = 0;
                                o[ox] = acc / ((float)(y1 - y0) * (x1 - x0));
                            }
                        }
                    }
                }
            }
        }
        finally
        {
            if (rented is not null) ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Average pooling's backward for one sample, the same geometry as <see cref="Forward"/>: each output's
    /// gradient, divided as the forward divided, is spread over its window. dx is overwritten.
    /// </summary>
    public static void AverageBackward(float* dy, float* dx, int C, int H, int W, int Ho, int Wo, int K, int S, int padTop, int padLeft, bool realCells)
    {
        int length = RowLength(W, Wo, K, S, padLeft);
        float[]? rented = null;
        float* stack = stackalloc float[length <= StackFloats ? length : 0];
        if (length > StackFloats) rented = ArrayPool<float>.Shared.Rent(length);
        new Span<float>(dx, C * H * W).Clear();
        try
        {
            fixed (float* heap = rented)
            {
                float* u = rented is null ? stack : heap;
                float* row = u + padLeft;
                float inverse = 1f / ((float)K * K);
                for (int c = 0; c < C; c++)
                {
                    float* dxc = dx + (long)c * H * W, dyc = dy + (long)c * Ho * Wo;
                    for (int oy = 0; oy < Ho; oy++)
                    {
                        int y0 = oy * S - padTop, y1 = Math.Min(y0 + K, H);
                        if (y0 < 0) y0 = 0;
                        // Spread the row of output gradients over one padded input row, then add it to each window row.
                        new Span<float>(u, length).Clear();
                        float* d = dyc + (long)oy * Wo;
                        for (int ox = 0; ox < Wo; ox++)
                        {
                            float g;
                            if (!realCells) g = d[ox] * inverse;
                            else
                            {
                                int x0 = ox * S - padLeft, x1 = Math.Min(x0 + K, W);
                                if (x0 < 0) x0 = 0;
                                g = d[ox] / ((float)(y1 - y0) * (x1 - x0));
                            }
                            float* cell = u + (long)ox * S;
                            for (int k = 0; k < K; k++) cell[k] += g;
                        }
                        for (int iy = y0; iy < y1; iy++) AddInto(dxc + (long)iy * W, row, W);
                    }
                }
            }
        }
        finally
        {
            if (rented is not null) ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// LocalResponseNorm's scale for one sample: s_c = k + α/n · Σ x_j² over the channels j from c − lo to c + hi
    /// that exist, each channel HW values, vectorised over the values.
    /// </summary>
    public static void LrnScale(float* x, float* s, int C, int HW, int lo, int hi, float alphaOverN, float k)
    {
        for (int c = 0; c < C; c++)
        {
            int j0 = Math.Max(0, c - lo), j1 = Math.Min(C - 1, c + hi);
            float* sc = s + (long)c * HW;
            new Span<float>(sc, HW).Clear();
            for (int j = j0; j <= j1; j++) SquareInto(sc, x + (long)j * HW, HW);
            Scale(sc, sc, HW, alphaOverN, k);
        }
    }

    /// <summary>p[i] = s[i]^(−β), β = 0.75 by square roots (exact to rounding), any other β as exp(−β · ln s).</summary>
    public static void PowerMinusBeta(float* s, float* p, int n, float beta)
    {
        if (beta == 0.75f)
        {
            int i = 0;
            if (Kernels.Use512)
                for (; i + 16 <= n; i += 16) Vector512.Store(MinusThreeQuarters(Vector512.Load(s + i)), p + i);
            else if (Kernels.Use256)
                for (; i + 8 <= n; i += 8) Vector256.Store(MinusThreeQuarters(Vector256.Load(s + i)), p + i);
            for (; i + 4 <= n; i += 4) Vector128.Store(MinusThreeQuarters(Vector128.Load(s + i)), p + i);
            for (; i < n; i++) p[i] = MinusThreeQuarters(s[i]);
            return;
        }
        var src = new ReadOnlySpan<float>(s, n);
        var dst = new Span<float>(p, n);
        System.Numerics.Tensors.TensorPrimitives.Log(src, dst);
        System.Numerics.Tensors.TensorPrimitives.Multiply(dst, -beta, dst);
        System.Numerics.Tensors.TensorPrimitives.Exp(dst, dst);
    }

    // s^(−3/4) = 1 / (s^½ · s^¼): two correctly rounded square roots, a product and a quotient, the same in every width.
    private static float MinusThreeQuarters(float s) { float r = MathF.Sqrt(s); return 1f / (r * MathF.Sqrt(r)); }
    private static Vector512<float> MinusThreeQuarters(Vector512<float> s) { var r = Vector512.Sqrt(s); return Vector512<float>.One / (r * Vector512.Sqrt(r)); }
    private static Vector256<float> MinusThreeQuarters(Vector256<float> s) { var r = Vector256.Sqrt(s); return Vector256<float>.One / (r * Vector256.Sqrt(r)); }
    private static Vector128<float> MinusThreeQuarters(Vector128<float> s) { var r = Vector128.Sqrt(s); return Vector128<float>.One / (r * Vector128.Sqrt(r)); }

    /// <summary>
    /// LocalResponseNorm forward for one sample: y = x · s^(−β). <paramref name="s"/> is C·HW floats of workspace.
    /// With β = 0.75 (PyTorch's and AlexNet's) each vector of a channel is done in one pass, its scale kept in
    /// registers; the arithmetic is <see cref="LrnScale"/>'s and <see cref="PowerMinusBeta"/>'s, so the result is the same.
    /// </summary>
    public static void LrnForward(float* x, float* y, float* s, int C, int HW, int lo, int hi, float alphaOverN, float beta, float k)
    {
        int n = C * HW;
        if (beta != 0.75f)
        {
            LrnScale(x, s, C, HW, lo, hi, alphaOverN, k);
            PowerMinusBeta(s, s, n, beta);
            System.Numerics.Tensors.TensorPrimitives.Multiply(new ReadOnlySpan<float>(x, n), new ReadOnlySpan<float>(s, n), new Span<float>(y, n));
            return;
        }
        for (int c = 0; c < C; c++)
        {
            int j0 = Math.Max(0, c - lo), j1 = Math.Min(C - 1, c + hi);
            float* x0 = x + (long)j0 * HW, xc = x + (long)c * HW, yc = y + (long)c * HW;
            int i = 0;
            if (Kernels.Use512)
                for (; i + 16 <= HW; i += 16)
                {
                    var acc = Vector512<float>.Zero;
                    for (int j = 0; j <= j1 - j0; j++) { var v = Vector512.Load(x0 + (long)j * HW + i); acc += v * v; }
                    Vector512.Store(Vector512.Load(xc + i) * MinusThreeQuarters(acc * alphaOverN + Vector512.Create(k)), yc + i);
                }
            else if (Kernels.Use256)
                for (; i + 8 <= HW; i += 8)
                {
                    var acc = Vector256<float>.Zero;
                    for (int j = 0; j <= j1 - j0; j++) { var v = Vector256.Load(x0 + (long)j * HW + i); acc += v * v; }
                    Vector256.Store(Vector256.Load(xc + i) * MinusThreeQuarters(acc * alphaOverN + Vector256.Create(k)), yc + i);
                }
            for (; i + 4 <= HW; i += 4)
            {
                var acc = Vector128<float>.Zero;
                for (int j = 0; j <= j1 - j0; j++) { var v = Vector128.Load(x0 + (long)j * HW + i); acc += v * v; }
                Vector128.Store(Vector128.Load(xc + i) * MinusThreeQuarters(acc * alphaOverN + Vector128.Create(k)), yc + i);
            }
            for (; i < HW; i++)
            {
                float acc = 0f;
                for (int j = 0; j <= j1 - j0; j++) { float v = x0[(long)j * HW + i]; acc += v * v; }
                yc[i] = xc[i] * MinusThreeQuarters(acc * alphaOverN + k);
            }
        }
    }

    /// <summary>
    /// LocalResponseNorm backward for one sample, from its input x and output y = x · s^(−β):
    /// dx_i = dy_i · s_i^(−β) − 2αβ/n · x_i · Σ_{c : i in window(c)} dy_c · y_c / s_c. <paramref name="s"/> is C·HW floats of workspace.
    /// </summary>
    public static void LrnBackward(float* x, float* y, float* dy, float* dx, float* s, int C, int HW, int lo, int hi, float alphaOverN, float beta, float k)
    {
        int n = C * HW;
        LrnScale(x, s, C, HW, lo, hi, alphaOverN, k);
        // dx = dy · s^(−β) first, while s still holds the scale; then s becomes q = dy · y / s.
        PowerMinusBeta(s, dx, n, beta);
        var ds = new Span<float>(s, n);
        System.Numerics.Tensors.TensorPrimitives.Multiply(new ReadOnlySpan<float>(dx, n), new ReadOnlySpan<float>(dy, n), new Span<float>(dx, n));
        System.Numerics.Tensors.TensorPrimitives.Divide(new ReadOnlySpan<float>(y, n), ds, ds);
        System.Numerics.Tensors.TensorPrimitives.Multiply(new ReadOnlySpan<float>(dy, n), ds, ds);
        float coefficient = -2f * alphaOverN * beta;
        int chunk = Math.Min(HW, StackFloats);
        float* sum = stackalloc float[chunk];
        // Channel i is in the window of the channels c from i − hi to i + lo.
        for (int i = 0; i < C; i++)
        {
            int c0 = Math.Max(0, i - hi), c1 = Math.Min(C - 1, i + lo);
            for (int at = 0; at < HW; at += chunk)
            {
                int m = Math.Min(chunk, HW - at);
                new Span<float>(sum, m).Clear();
                for (int c = c0; c <= c1; c++) AddInto(sum, s + (long)c * HW + at, m);
                long e = (long)i * HW + at;
                // dx += coefficient · x · sum
                System.Numerics.Tensors.TensorPrimitives.Multiply(new ReadOnlySpan<float>(x + e, m), new ReadOnlySpan<float>(sum, m), new Span<float>(sum, m));
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(sum, m), coefficient, new ReadOnlySpan<float>(dx + e, m), new Span<float>(dx + e, m));
            }
        }
    }

    private static int RowLength(int W, int Wo, int K, int S, int padLeft)
        => (int)Math.Max((long)(Wo - 1) * S + K, (long)padLeft + W);

    private static void MaxInto(float* a, float* b, int n)
    {
        int i = 0;
        if (Kernels.Use512)
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Max(Vector512.Load(a + i), Vector512.Load(b + i)), a + i);
        else if (Kernels.Use256)
            for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Max(Vector256.Load(a + i), Vector256.Load(b + i)), a + i);
        for (; i + 4 <= n; i += 4) Vector128.Store(Vector128.Max(Vector128.Load(a + i), Vector128.Load(b + i)), a + i);
        for (; i < n; i++) a[i] = MathF.Max(a[i], b[i]);
    }

    private static void AddInto(float* a, float* b, int n)
    {
        int i = 0;
        if (Kernels.Use512)
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Load(a + i) + Vector512.Load(b + i), a + i);
        else if (Kernels.Use256)
            for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(a + i) + Vector256.Load(b + i), a + i);
        for (; i + 4 <= n; i += 4) Vector128.Store(Vector128.Load(a + i) + Vector128.Load(b + i), a + i);
        for (; i < n; i++) a[i] += b[i];
    }

    private static void SquareInto(float* a, float* b, int n)
    {
        int i = 0;
        if (Kernels.Use512)
            for (; i + 16 <= n; i += 16) { var v = Vector512.Load(b + i); Vector512.Store(Vector512.Load(a + i) + v * v, a + i); }
        else if (Kernels.Use256)
            for (; i + 8 <= n; i += 8) { var v = Vector256.Load(b + i); Vector256.Store(Vector256.Load(a + i) + v * v, a + i); }
        for (; i + 4 <= n; i += 4) { var v = Vector128.Load(b + i); Vector128.Store(Vector128.Load(a + i) + v * v, a + i); }
        for (; i < n; i++) a[i] += b[i] * b[i];
    }

    private static void Scale(float* a, float* dst, int n, float scale, float shift)
    {
        int i = 0;
        if (Kernels.Use512)
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Load(a + i) * scale + Vector512.Create(shift), dst + i);
        else if (Kernels.Use256)
            for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(a + i) * scale + Vector256.Create(shift), dst + i);
        for (; i + 4 <= n; i += 4) Vector128.Store(Vector128.Load(a + i) * scale + Vector128.Create(shift), dst + i);
        for (; i < n; i++) dst[i] = a[i] * scale + shift;
    }
}
