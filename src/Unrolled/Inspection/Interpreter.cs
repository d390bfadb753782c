using System;
using System.Runtime.CompilerServices;
using System.Numerics.Tensors;

namespace Unrolled.Inspection;

/// <summary>
/// A reference interpreter of the layers of LAYERS.md in inference mode, one sample at a time: Dropout is the
/// identity and BatchNorm uses its running statistics. The forward pass keeps every layer's output (and the
/// pre-activation of a Conv2D or Dense layer with a fused activation) so that the backward pass, a
/// vector–Jacobian product, can run down to any layer. Stateless: every buffer is passed in.
/// </summary>
internal static class Interpreter
{
    private const float BatchNormEpsilon = 1e-5f;

    /// <summary>The per-sample input of layer <paramref name="i"/>: the sample for the first layer, otherwise the
    /// previous layer's output.</summary>
    public static ReadOnlySpan<float> LayerInput(InspectionPlan plan, ReadOnlySpan<float> sample, ReadOnlySpan<float> activations, int i) =>
        i == 0 ? sample : LayerOutput(plan, activations, i - 1);

    public static ReadOnlySpan<float> LayerOutput(InspectionPlan plan, ReadOnlySpan<float> activations, int i) =>
        activations.Slice(plan.Layers[i].OutputOffset, plan.Layers[i].Description.Output.Size);

    /// <summary>Runs layers 0..<paramref name="last"/> on one sample, writing their outputs into <paramref name="activations"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(InspectionPlan plan, ReadOnlySpan<float> parameters, ReadOnlySpan<float> buffers,
        ReadOnlySpan<float> sample, Span<float> activations, Span<float> scratch, int last)
    {
        for (int i = 0; i <= last; i++)
        {
            var layer = plan.Layers[i];
            var d = layer.Description;
            ReadOnlySpan<float> x = LayerInput(plan, sample, activations, i);
            Span<float> y = activations.Slice(layer.OutputOffset, d.Output.Size);
            switch (d.Type)
            {
                case LayerType.Conv2D:
                case LayerType.Dense:
                {
                    Span<float> z = layer.KeepsPreActivation ? activations.Slice(layer.PreActivationOffset, d.Output.Size) : y;
                    if (d.Type == LayerType.Conv2D) ConvForward(layer, parameters, x, z, scratch);
                    else DenseForward(layer, parameters, x, z);
                    if (layer.KeepsPreActivation) ActivationForward(layer.Activation, layer.Slope, z, y);
                    break;
                }
                case LayerType.MaxPool2D: MaxPoolForward(d, x, y); break;
                case LayerType.AvgPool2D: AvgPoolForward(d, x, y); break;
                case LayerType.GlobalAvgPool2D:
                {
                    int plane = d.Input.H * d.Input.W;
                    for (int c = 0; c < d.Input.C; c++) y[c] = TensorPrimitives.Sum(x.Slice(c * plane, plane)) / plane;
                    break;
                }
                case LayerType.BatchNorm: BatchNormForward(layer, parameters, buffers, x, y); break;
                case LayerType.Flatten:
                case LayerType.Dropout:
                    x.CopyTo(y);
                    break;
                case LayerType.LocalResponseNorm: LrnForward(d, x, y, scratch); break;
                case LayerType.Softmax: SoftmaxForward(x, y); break;
                default: ActivationForward(layer.Activation, layer.Slope, x, y); break;
            }
        }
    }

    /// <summary>
    /// Backward from the output of layer <paramref name="last"/> to the output of layer <paramref name="stop"/>
    /// (−1: to the sample). <paramref name="a"/> holds the gradient with respect to layer <paramref name="last"/>'s
    /// output on entry; <paramref name="b"/> is scratch of the same length. Returns the buffer (a or b) that holds
    /// the result in its first elements. The forward pass must have run up to <paramref name="last"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Span<float> Backward(InspectionPlan plan, ReadOnlySpan<float> parameters, ReadOnlySpan<float> buffers,
        ReadOnlySpan<float> sample, Span<float> activations, Span<float> scratch, int last, int stop, Span<float> a, Span<float> b)
    {
        for (int i = last; i > stop; i--)
        {
            var layer = plan.Layers[i];
            var d = layer.Description;
            ReadOnlySpan<float> x = LayerInput(plan, sample, activations, i);
            ReadOnlySpan<float> y = activations.Slice(layer.OutputOffset, d.Output.Size);
            Span<float> dy = a.Slice(0, d.Output.Size);
            Span<float> dx = b.Slice(0, d.Input.Size);
            switch (d.Type)
            {
                case LayerType.Conv2D:
                case LayerType.Dense:
                    if (layer.KeepsPreActivation)
                        ActivationBackward(layer.Activation, layer.Slope, activations.Slice(layer.PreActivationOffset, d.Output.Size), y, dy, dy);
                    if (d.Type == LayerType.Conv2D) ConvBackward(layer, parameters, dy, dx, scratch);
                    else DenseBackward(layer, parameters, dy, dx);
                    break;
                case LayerType.MaxPool2D: MaxPoolBackward(d, x, dy, dx); break;
                case LayerType.AvgPool2D: AvgPoolBackward(d, dy, dx); break;
                case LayerType.GlobalAvgPool2D:
                {
                    int plane = d.Input.H * d.Input.W;
                    for (int c = 0; c < d.Input.C; c++) dx.Slice(c * plane, plane).Fill(dy[c] / plane);
                    break;
                }
                case LayerType.BatchNorm: BatchNormBackward(layer, parameters, buffers, dy, dx); break;
                case LayerType.Flatten:
                case LayerType.Dropout:
                    dy.CopyTo(dx);
                    break;
                case LayerType.LocalResponseNorm: LrnBackward(d, x, dy, dx, scratch); break;
                case LayerType.Softmax:
                {
                    float dot = TensorPrimitives.Dot(dy, y);
                    for (int k = 0; k < dx.Length; k++) dx[k] = y[k] * (dy[k] - dot);
                    break;
                }
                default: ActivationBackward(layer.Activation, layer.Slope, x, y, dy, dx); break;
            }
            var t = a; a = b; b = t;
        }
        return a;
    }

    // ------------------------------------------------------------------ activations

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ActivationForward(Activation activation, float slope, ReadOnlySpan<float> x, Span<float> y)
    {
        switch (activation)
        {
            case Activation.None: x.CopyTo(y); break;
            case Activation.ReLU:
                for (int k = 0; k < x.Length; k++) y[k] = x[k] > 0 ? x[k] : (float.IsNaN(x[k]) ? x[k] : 0f);
                break;
            case Activation.LeakyReLU:
                for (int k = 0; k < x.Length; k++) y[k] = x[k] > 0 ? x[k] : x[k] * slope;
                break;
            case Activation.Sigmoid: TensorPrimitives.Sigmoid(x, y); break;
            case Activation.Tanh: TensorPrimitives.Tanh(x, y); break;
            default: throw new NotSupportedException($"activation {activation}");
        }
    }

    /// <summary>dx = dy · f′, from the pre-activation x or the output y, whichever the derivative reads. dx may be dy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ActivationBackward(Activation activation, float slope, ReadOnlySpan<float> x, ReadOnlySpan<float> y,
        ReadOnlySpan<float> dy, Span<float> dx)
    {
        switch (activation)
        {
            case Activation.None: dy.CopyTo(dx); break;
            case Activation.ReLU: // the gradient at 0 is 0 (LAYERS.md)
                for (int k = 0; k < dy.Length; k++) dx[k] = x[k] > 0 ? dy[k] : 0f;
                break;
            case Activation.LeakyReLU:
                for (int k = 0; k < dy.Length; k++) dx[k] = x[k] > 0 ? dy[k] : dy[k] * slope;
                break;
            case Activation.Sigmoid:
                for (int k = 0; k < dy.Length; k++) dx[k] = dy[k] * y[k] * (1f - y[k]);
                break;
            case Activation.Tanh:
                for (int k = 0; k < dy.Length; k++) dx[k] = dy[k] * (1f - y[k] * y[k]);
                break;
            default: throw new NotSupportedException($"activation {activation}");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SoftmaxForward(ReadOnlySpan<float> x, Span<float> y)
    {
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, y);
        TensorPrimitives.Exp(y, y);
        float sum = TensorPrimitives.Sum(y);
        TensorPrimitives.Divide(y, sum, y);
    }

    // ------------------------------------------------------------------ dense and convolution

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DenseForward(InterpretedLayer layer, ReadOnlySpan<float> parameters, ReadOnlySpan<float> x, Span<float> y)
    {
        int n = x.Length;
        var w = parameters.Slice(layer.Weight, y.Length * n);
        for (int u = 0; u < y.Length; u++)
            y[u] = TensorPrimitives.Dot(w.Slice(u * n, n), x) + (layer.Bias >= 0 ? parameters[layer.Bias + u] : 0f);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DenseBackward(InterpretedLayer layer, ReadOnlySpan<float> parameters, ReadOnlySpan<float> dy, Span<float> dx)
    {
        int n = dx.Length;
        var w = parameters.Slice(layer.Weight, dy.Length * n);
        dx.Clear();
        for (int u = 0; u < dy.Length; u++)
            if (dy[u] != 0) TensorPrimitives.MultiplyAdd(w.Slice(u * n, n), dy[u], dx, dx);
    }

    private static int CeilDiv(int a, int b) => a >= 0 ? (a + b - 1) / b : -(-a / b);

    private static int FloorDiv(int a, int b) => a >= 0 ? a / b : -((-a + b - 1) / b);

    /// <summary>The output columns ox whose input column ox·S + k − pad falls inside [0, width): [first, last].</summary>
    private static (int First, int Last) Columns(int k, int pad, int stride, int width, int outputs) =>
        (Math.Max(0, CeilDiv(pad - k, stride)), Math.Min(outputs - 1, FloorDiv(width - 1 + pad - k, stride)));

    /// <summary>im2col: row r = (c·Kh + ky)·Kw + kx of <paramref name="patches"/> holds, for every output cell, the
    /// input cell under kernel tap (c, ky, kx), 0 where the tap falls on padding.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Im2Col(LayerDescription d, ReadOnlySpan<float> x, Span<float> patches)
    {
        int C = d.Input.C, H = d.Input.H, W = d.Input.W, Ho = d.Output.H, Wo = d.Output.W;
        int Kh = d.KernelH, Kw = d.KernelW, S = d.Stride, pt = d.PadTop, pl = d.PadLeft, P = Ho * Wo;
        for (int c = 0; c < C; c++)
        {
            var input = x.Slice(c * H * W, H * W);
            for (int ky = 0; ky < Kh; ky++)
                for (int kx = 0; kx < Kw; kx++)
                {
                    var row = patches.Slice(((c * Kh + ky) * Kw + kx) * P, P);
                    var (ox0, ox1) = Columns(kx, pl, S, W, Wo);
                    for (int oy = 0; oy < Ho; oy++)
                    {
                        var dest = row.Slice(oy * Wo, Wo);
                        int iy = oy * S + ky - pt;
                        if ((uint)iy >= (uint)H || ox1 < ox0) { dest.Clear(); continue; }
                        var inRow = input.Slice(iy * W, W);
                        dest.Slice(0, ox0).Clear();
                        dest.Slice(ox1 + 1).Clear();
                        if (S == 1) inRow.Slice(ox0 + kx - pl, ox1 - ox0 + 1).CopyTo(dest.Slice(ox0));
                        else for (int ox = ox0; ox <= ox1; ox++) dest[ox] = inRow[ox * S + kx - pl];
                    }
                }
        }
    }

    /// <summary>col2im, the adjoint of <see cref="Im2Col"/>: adds every patch row back onto the input cells it was read from.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Col2Im(LayerDescription d, ReadOnlySpan<float> patches, Span<float> dx)
    {
        int C = d.Input.C, H = d.Input.H, W = d.Input.W, Ho = d.Output.H, Wo = d.Output.W;
        int Kh = d.KernelH, Kw = d.KernelW, S = d.Stride, pt = d.PadTop, pl = d.PadLeft, P = Ho * Wo;
        dx.Clear();
        for (int c = 0; c < C; c++)
        {
            var input = dx.Slice(c * H * W, H * W);
            for (int ky = 0; ky < Kh; ky++)
                for (int kx = 0; kx < Kw; kx++)
                {
                    var row = patches.Slice(((c * Kh + ky) * Kw + kx) * P, P);
                    var (ox0, ox1) = Columns(kx, pl, S, W, Wo);
                    if (ox1 < ox0) continue;
                    for (int oy = 0; oy < Ho; oy++)
                    {
                        int iy = oy * S + ky - pt;
                        if ((uint)iy >= (uint)H) continue;
                        var inRow = input.Slice(iy * W, W);
                        var source = row.Slice(oy * Wo, Wo);
                        if (S == 1)
                        {
                            var target = inRow.Slice(ox0 + kx - pl, ox1 - ox0 + 1);
                            TensorPrimitives.Add(target, source.Slice(ox0, ox1 - ox0 + 1), target);
                        }
                        else for (int ox = ox0; ox <= ox1; ox++) inRow[ox * S + kx - pl] += source[ox];
                    }
                }
        }
    }

    /// <summary>The patch matrix's size for a convolution: C·Kh·Kw rows of Ho·Wo.</summary>
    public static int PatchLength(LayerDescription d) => d.Input.C * d.KernelH * d.KernelW * d.Output.H * d.Output.W;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ConvForward(InterpretedLayer layer, ReadOnlySpan<float> parameters, ReadOnlySpan<float> x, Span<float> y, Span<float> scratch)
    {
        var d = layer.Description;
        int F = d.Output.C, P = d.Output.H * d.Output.W, K = d.Input.C * d.KernelH * d.KernelW;
        var patches = scratch.Slice(0, K * P);
        Im2Col(d, x, patches);
        var weights = parameters.Slice(layer.Weight, F * K);
        for (int f = 0; f < F; f++)
        {
            var plane = y.Slice(f * P, P);
            plane.Fill(layer.Bias >= 0 ? parameters[layer.Bias + f] : 0f);
            for (int r = 0; r < K; r++)
            {
                float w = weights[f * K + r];
                if (w != 0) TensorPrimitives.MultiplyAdd(patches.Slice(r * P, P), w, plane, plane);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ConvBackward(InterpretedLayer layer, ReadOnlySpan<float> parameters, ReadOnlySpan<float> dy, Span<float> dx, Span<float> scratch)
    {
        var d = layer.Description;
        int F = d.Output.C, P = d.Output.H * d.Output.W, K = d.Input.C * d.KernelH * d.KernelW;
        var patches = scratch.Slice(0, K * P);
        var weights = parameters.Slice(layer.Weight, F * K);
        for (int r = 0; r < K; r++)
        {
            var row = patches.Slice(r * P, P);
            row.Clear();
            for (int f = 0; f < F; f++)
            {
                float w = weights[f * K + r];
                if (w != 0) TensorPrimitives.MultiplyAdd(dy.Slice(f * P, P), w, row, row);
            }
        }
        Col2Im(d, patches, dx);
    }

    // ------------------------------------------------------------------ pooling

    /// <summary>The flat index (within the channel plane) of the first maximum of a pooling window in row-major
    /// order, padded cells never winning; a NaN wins (and propagates) as in PyTorch. −1 for a window of padding only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int ArgMax(ReadOnlySpan<float> plane, int H, int W, int y0, int x0, int Kh, int Kw)
    {
        int best = -1;
        float max = float.NegativeInfinity;
        for (int ky = Math.Max(0, -y0); ky < Kh && y0 + ky < H; ky++)
            for (int kx = Math.Max(0, -x0); kx < Kw && x0 + kx < W; kx++)
            {
                int at = (y0 + ky) * W + x0 + kx;
                float v = plane[at];
                if (best < 0 || v > max) { best = at; max = v; }
                if (float.IsNaN(v)) return at;
            }
        return best;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MaxPoolForward(LayerDescription d, ReadOnlySpan<float> x, Span<float> y)
    {
        int H = d.Input.H, W = d.Input.W, Ho = d.Output.H, Wo = d.Output.W, S = d.Stride;
        for (int c = 0; c < d.Input.C; c++)
        {
            var plane = x.Slice(c * H * W, H * W);
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++)
                {
                    int at = ArgMax(plane, H, W, oy * S - d.PadTop, ox * S - d.PadLeft, d.KernelH, d.KernelW);
                    y[(c * Ho + oy) * Wo + ox] = at < 0 ? 0f : plane[at];
                }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MaxPoolBackward(LayerDescription d, ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        int H = d.Input.H, W = d.Input.W, Ho = d.Output.H, Wo = d.Output.W, S = d.Stride;
        dx.Clear();
        for (int c = 0; c < d.Input.C; c++)
        {
            var plane = x.Slice(c * H * W, H * W);
            var gradPlane = dx.Slice(c * H * W, H * W);
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++)
                {
                    int at = ArgMax(plane, H, W, oy * S - d.PadTop, ox * S - d.PadLeft, d.KernelH, d.KernelW);
                    if (at >= 0) gradPlane[at] += dy[(c * Ho + oy) * Wo + ox];
                }
        }
    }

    /// <summary>The real (unpadded) rows [first, end) of a window starting at row <paramref name="start"/>.</summary>
    private static (int First, int End) Clip(int start, int k, int length) => (Math.Max(start, 0), Math.Min(start + k, length));

    /// <summary>The divisor of one average-pooling window: the whole window with integer padding (PyTorch
    /// count_include_pad = true; in floor mode with padding at most half the window no window passes the padded
    /// edge), the real cells with Same padding (Keras).</summary>
    private static int Divisor(LayerDescription d, int realCells) => d.SamePadding ? realCells : d.KernelH * d.KernelW;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AvgPoolForward(LayerDescription d, ReadOnlySpan<float> x, Span<float> y)
    {
        int H = d.Input.H, W = d.Input.W, Ho = d.Output.H, Wo = d.Output.W, S = d.Stride;
        for (int c = 0; c < d.Input.C; c++)
        {
            var plane = x.Slice(c * H * W, H * W);
            for (int oy = 0; oy < Ho; oy++)
            {
                var (r0, r1) = Clip(oy * S - d.PadTop, d.KernelH, H);
                for (int ox = 0; ox < Wo; ox++)
                {
                    var (c0, c1) = Clip(ox * S - d.PadLeft, d.KernelW, W);
                    float sum = 0;
                    for (int r = r0; r < r1; r++)
                        for (int k = c0; k < c1; k++) sum += plane[r * W + k];
                    int cells = Math.Max(r1 - r0, 0) * Math.Max(c1 - c0, 0);
                    y[(c * Ho + oy) * Wo + ox] = cells == 0 ? 0f : sum / Divisor(d, cells);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AvgPoolBackward(LayerDescription d, ReadOnlySpan<float> dy, Span<float> dx)
    {
        int H = d.Input.H, W = d.Input.W, Ho = d.Output.H, Wo = d.Output.W, S = d.Stride;
        dx.Clear();
        for (int c = 0; c < d.Input.C; c++)
        {
            var gradPlane = dx.Slice(c * H * W, H * W);
            for (int oy = 0; oy < Ho; oy++)
            {
                var (r0, r1) = Clip(oy * S - d.PadTop, d.KernelH, H);
                for (int ox = 0; ox < Wo; ox++)
                {
                    var (c0, c1) = Clip(ox * S - d.PadLeft, d.KernelW, W);
                    int cells = Math.Max(r1 - r0, 0) * Math.Max(c1 - c0, 0);
                    if (cells == 0) continue;
                    float g = dy[(c * Ho + oy) * Wo + ox] / Divisor(d, cells);
                    for (int r = r0; r < r1; r++)
                        for (int k = c0; k < c1; k++) gradPlane[r * W + k] += g;
                }
            }
        }
    }

    // ------------------------------------------------------------------ normalisation

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BatchNormForward(InterpretedLayer layer, ReadOnlySpan<float> parameters, ReadOnlySpan<float> buffers,
        ReadOnlySpan<float> x, Span<float> y)
    {
        var d = layer.Description;
        int plane = d.Input.Size / d.Input.C;
        for (int c = 0; c < d.Input.C; c++)
        {
            float scale = parameters[layer.Weight + c] / MathF.Sqrt(buffers[layer.RunningVar + c] + BatchNormEpsilon);
            float mean = buffers[layer.RunningMean + c], shift = parameters[layer.Bias + c];
            var xs = x.Slice(c * plane, plane);
            var ys = y.Slice(c * plane, plane);
            for (int k = 0; k < plane; k++) ys[k] = (xs[k] - mean) * scale + shift;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BatchNormBackward(InterpretedLayer layer, ReadOnlySpan<float> parameters, ReadOnlySpan<float> buffers,
        ReadOnlySpan<float> dy, Span<float> dx)
    {
        var d = layer.Description;
        int plane = d.Input.Size / d.Input.C;
        for (int c = 0; c < d.Input.C; c++)
        {
            float scale = parameters[layer.Weight + c] / MathF.Sqrt(buffers[layer.RunningVar + c] + BatchNormEpsilon);
            TensorPrimitives.Multiply(dy.Slice(c * plane, plane), scale, dx.Slice(c * plane, plane));
        }
    }

    /// <summary>s_c = k + α/n · Σ a_j² over j in [c − n/2, c + (n − 1)/2] ∩ [0, C), one plane per channel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LrnScale(LayerDescription d, ReadOnlySpan<float> x, Span<float> s)
    {
        int C = d.Input.C, plane = d.Input.Size / C, n = d.LrnSize;
        float k = (float)d.K, alpha = (float)(d.Alpha / n);
        for (int c = 0; c < C; c++)
        {
            var sc = s.Slice(c * plane, plane);
            sc.Clear();
            for (int j = Math.Max(0, c - n / 2); j <= Math.Min(C - 1, c + (n - 1) / 2); j++)
            {
                var a = x.Slice(j * plane, plane);
                TensorPrimitives.MultiplyAdd(a, a, sc, sc);
            }
            TensorPrimitives.Multiply(sc, alpha, sc);
            TensorPrimitives.Add(sc, k, sc);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LrnForward(LayerDescription d, ReadOnlySpan<float> x, Span<float> y, Span<float> scratch)
    {
        var s = scratch.Slice(0, x.Length);
        LrnScale(d, x, s);
        float beta = (float)d.Beta;
        for (int i = 0; i < x.Length; i++) y[i] = x[i] * MathF.Pow(s[i], -beta);
    }

    /// <summary>b_c = a_c·s_c^−β: da_i = g_i·s_i^−β − (2αβ/n)·a_i·Σ_{c : i ∈ N(c)} g_c·a_c·s_c^(−β−1),
    /// where i ∈ N(c) ⇔ c ∈ [i − (n − 1)/2, i + n/2].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LrnBackward(LayerDescription d, ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, Span<float> scratch)
    {
        int C = d.Input.C, plane = d.Input.Size / C, n = d.LrnSize;
        var s = scratch.Slice(0, x.Length);
        var t = scratch.Slice(x.Length, x.Length);
        LrnScale(d, x, s);
        float beta = (float)d.Beta, factor = (float)(2 * d.Alpha * d.Beta / n);
        for (int i = 0; i < x.Length; i++)
        {
            float p = MathF.Pow(s[i], -beta);
            t[i] = dy[i] * x[i] * p / s[i];
            dx[i] = dy[i] * p;
        }
        for (int i = 0; i < C; i++)
        {
            var di = dx.Slice(i * plane, plane);
            var ai = x.Slice(i * plane, plane);
            for (int c = Math.Max(0, i - (n - 1) / 2); c <= Math.Min(C - 1, i + n / 2); c++)
            {
                var tc = t.Slice(c * plane, plane);
                for (int k = 0; k < plane; k++) di[k] -= factor * ai[k] * tc[k];
            }
        }
    }
}
