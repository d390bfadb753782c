using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Unrolled.Runtime;

/// <summary>
/// Element-wise pieces of backward passes that do not depend on shapes, shared by all generated networks.
/// Branch-free and vectorised: a data-dependent branch per element (ReLU's "is it positive?") mispredicts
/// about half the time and would cost more than the arithmetic.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class Ops
{
    /// <summary>The activations whose derivative can be read from their output (Unrolled.Activation values).</summary>
    public const int ReLU = 1, LeakyReLU = 2, Sigmoid = 3, Tanh = 4;

    /// <summary>dy[i] *= f'(z[i]) for y = f(z), computed from y: ReLU (y &gt; 0), LeakyReLU with the given slope
    /// (slope &gt; 0, so y &gt; 0 exactly when z &gt; 0), Sigmoid y(1 − y), Tanh 1 − y².</summary>
    public static void ScaleByDerivative(float* dy, float* y, int n, int activation, float slope)
    {
        int i = 0;
        if (Kernels.Use512)
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Load(dy + i) * Derivative(Vector512.Load(y + i), activation, slope), dy + i);
        else if (Kernels.Use256)
            for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(dy + i) * Derivative(Vector256.Load(y + i), activation, slope), dy + i);
        for (; i + 4 <= n; i += 4) Vector128.Store(Vector128.Load(dy + i) * Derivative(Vector128.Load(y + i), activation, slope), dy + i);
        for (; i < n; i++) dy[i] *= Derivative(y[i], activation, slope);
    }

    /// <summary>dx[i] = x[i] &gt; 0 ? dy[i] : slope · dy[i] (ReLU with slope 0, LeakyReLU otherwise), from the input x.</summary>
    public static void RectifierBackward(float* dx, float* dy, float* x, int n, float slope)
    {
        int i = 0;
        if (Kernels.Use512)
            for (; i + 16 <= n; i += 16)
            {
                Vector512<float> d = Vector512.Load(dy + i);
                Vector512.Store(Vector512.ConditionalSelect(Vector512.GreaterThan(Vector512.Load(x + i), Vector512<float>.Zero), d, d * slope), dx + i);
            }
        else if (Kernels.Use256)
            for (; i + 8 <= n; i += 8)
            {
                Vector256<float> d = Vector256.Load(dy + i);
                Vector256.Store(Vector256.ConditionalSelect(Vector256.GreaterThan(Vector256.Load(x + i), Vector256<float>.Zero), d, d * slope), dx + i);
            }
        for (; i + 4 <= n; i += 4)
        {
            Vector128<float> d = Vector128.Load(dy + i);
            Vector128.Store(Vector128.ConditionalSelect(Vector128.GreaterThan(Vector128.Load(x + i), Vector128<float>.Zero), d, d * slope), dx + i);
        }
        for (; i < n; i++) dx[i] = x[i] > 0f ? dy[i] : dy[i] * slope;
    }

    /// <summary>y[i] = x[i] · scale + shift (a multiply and an add, each rounded: batch-norm's affine step).</summary>
    public static void ScaleShift(float* x, float* y, int n, float scale, float shift)
    {
        int i = 0;
        if (Kernels.Use512)
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Load(x + i) * scale + Vector512.Create(shift), y + i);
        else if (Kernels.Use256)
            for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(x + i) * scale + Vector256.Create(shift), y + i);
        for (; i + 4 <= n; i += 4) Vector128.Store(Vector128.Load(x + i) * scale + Vector128.Create(shift), y + i);
        for (; i < n; i++) y[i] = x[i] * scale + shift;
    }

    /// <summary>Σ x[i] and Σ x[i]², each float widened to double before it is added (batch-norm statistics).</summary>
    public static void SumAndSquares(float* x, int n, out double sum, out double squares)
    {
        int i = 0;
        double s = 0, q = 0;
        if (Kernels.Use512)
        {
            Vector512<double> s0 = default, s1 = default, q0 = default, q1 = default;
            for (; i + 16 <= n; i += 16)
            {
                Vector512<float> v = Vector512.Load(x + i);
                Vector512<double> lo = Vector512.WidenLower(v), hi = Vector512.WidenUpper(v);
                s0 += lo; s1 += hi; q0 += lo * lo; q1 += hi * hi;
            }
            s = Vector512.Sum(s0 + s1); q = Vector512.Sum(q0 + q1);
        }
        else if (Kernels.Use256)
        {
            Vector256<double> s0 = default, s1 = default, q0 = default, q1 = default;
            for (; i + 8 <= n; i += 8)
            {
                Vector256<float> v = Vector256.Load(x + i);
                Vector256<double> lo = Vector256.WidenLower(v), hi = Vector256.WidenUpper(v);
                s0 += lo; s1 += hi; q0 += lo * lo; q1 += hi * hi;
            }
            s = Vector256.Sum(s0 + s1); q = Vector256.Sum(q0 + q1);
        }
        for (; i < n; i++) { double v = x[i]; s += v; q += v * v; }
        sum = s;
        squares = q;
    }

    /// <summary>Σ dy[i] and Σ dy[i] · x̂[i] with x̂[i] = (x[i] − mean) · inv (in float), summed in double
    /// (batch-norm backward).</summary>
    public static void GradientSums(float* dy, float* x, float mean, float inv, int n, out double sum, out double dot)
    {
        int i = 0;
        double s = 0, q = 0;
        if (Kernels.Use512)
        {
            Vector512<double> s0 = default, s1 = default, q0 = default, q1 = default;
            for (; i + 16 <= n; i += 16)
            {
                Vector512<float> d = Vector512.Load(dy + i), xh = (Vector512.Load(x + i) - Vector512.Create(mean)) * inv;
                Vector512<double> dl = Vector512.WidenLower(d), dh = Vector512.WidenUpper(d);
                s0 += dl; s1 += dh; q0 += dl * Vector512.WidenLower(xh); q1 += dh * Vector512.WidenUpper(xh);
            }
            s = Vector512.Sum(s0 + s1); q = Vector512.Sum(q0 + q1);
        }
        else if (Kernels.Use256)
        {
            Vector256<double> s0 = default, s1 = default, q0 = default, q1 = default;
            for (; i + 8 <= n; i += 8)
            {
                Vector256<float> d = Vector256.Load(dy + i), xh = (Vector256.Load(x + i) - Vector256.Create(mean)) * inv;
                Vector256<double> dl = Vector256.WidenLower(d), dh = Vector256.WidenUpper(d);
                s0 += dl; s1 += dh; q0 += dl * Vector256.WidenLower(xh); q1 += dh * Vector256.WidenUpper(xh);
            }
            s = Vector256.Sum(s0 + s1); q = Vector256.Sum(q0 + q1);
        }
        for (; i < n; i++) { double d = dy[i]; s += d; q += d * ((x[i] - mean) * inv); }
        sum = s;
        dot = q;
    }

    /// <summary>dx[i] = k · (count · dy[i] − sd − x̂[i] · sdx), x̂[i] = (x[i] − mean) · inv: batch-norm's input gradient.</summary>
    public static void BatchNormInputGradient(float* x, float* dy, float* dx, int n, float mean, float inv, float k, float count, float sd, float sdx)
    {
        int i = 0;
        if (Kernels.Use512)
            for (; i + 16 <= n; i += 16)
            {
                Vector512<float> xh = (Vector512.Load(x + i) - Vector512.Create(mean)) * inv;
                Vector512.Store((Vector512.Load(dy + i) * count - Vector512.Create(sd) - xh * sdx) * k, dx + i);
            }
        else if (Kernels.Use256)
            for (; i + 8 <= n; i += 8)
            {
                Vector256<float> xh = (Vector256.Load(x + i) - Vector256.Create(mean)) * inv;
                Vector256.Store((Vector256.Load(dy + i) * count - Vector256.Create(sd) - xh * sdx) * k, dx + i);
            }
        for (; i + 4 <= n; i += 4)
        {
            Vector128<float> xh = (Vector128.Load(x + i) - Vector128.Create(mean)) * inv;
            Vector128.Store((Vector128.Load(dy + i) * count - Vector128.Create(sd) - xh * sdx) * k, dx + i);
        }
        for (; i < n; i++) { float xh = (x[i] - mean) * inv; dx[i] = k * (count * dy[i] - sd - xh * sdx); }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Derivative(float y, int activation, float slope) => activation switch
    {
        ReLU => y > 0f ? 1f : 0f,
        LeakyReLU => y > 0f ? 1f : slope,
        Sigmoid => y * (1f - y),
        Tanh => 1f - y * y,
        _ => 1f,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Derivative(Vector512<float> y, int activation, float slope) => activation switch
    {
        ReLU => Vector512.ConditionalSelect(Vector512.GreaterThan(y, Vector512<float>.Zero), Vector512<float>.One, Vector512<float>.Zero),
        LeakyReLU => Vector512.ConditionalSelect(Vector512.GreaterThan(y, Vector512<float>.Zero), Vector512<float>.One, Vector512.Create(slope)),
        Sigmoid => y * (Vector512<float>.One - y),
        Tanh => Vector512<float>.One - y * y,
        _ => Vector512<float>.One,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Derivative(Vector256<float> y, int activation, float slope) => activation switch
    {
        ReLU => Vector256.ConditionalSelect(Vector256.GreaterThan(y, Vector256<float>.Zero), Vector256<float>.One, Vector256<float>.Zero),
        LeakyReLU => Vector256.ConditionalSelect(Vector256.GreaterThan(y, Vector256<float>.Zero), Vector256<float>.One, Vector256.Create(slope)),
        Sigmoid => y * (Vector256<float>.One - y),
        Tanh => Vector256<float>.One - y * y,
        _ => Vector256<float>.One,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Derivative(Vector128<float> y, int activation, float slope) => activation switch
    {
        ReLU => Vector128.ConditionalSelect(Vector128.GreaterThan(y, Vector128<float>.Zero), Vector128<float>.One, Vector128<float>.Zero),
        LeakyReLU => Vector128.ConditionalSelect(Vector128.GreaterThan(y, Vector128<float>.Zero), Vector128<float>.One, Vector128.Create(slope)),
        Sigmoid => y * (Vector128<float>.One - y),
        Tanh => Vector128<float>.One - y * y,
        _ => Vector128<float>.One,
    };
}
