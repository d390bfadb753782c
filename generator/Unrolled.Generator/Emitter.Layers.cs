using System;
using System.Linq;
using Unrolled.Generator.Model;
using static Unrolled.Generator.CodeWriter;

namespace Unrolled.Generator;

/// <summary>Kernels of the layers other than Conv2D. One forward and one backward method per layer, per sample.</summary>
internal static partial class Emitter
{
    /// <summary>The prefix of a layer's kernel methods (<see cref="Strategy.KernelName"/>).</summary>
    private static string Method(LayerSpec l) => Strategy.KernelName(l);

    private static void EmitPathSwitch(CodeWriter w, Action<VecPath> body)
    {
        for (int i = 0; i < VecPath.All.Length; i++)
        {
            VecPath v = VecPath.All[i];
            string header = i == 0 ? $"if ({v.Condition})"
                : i < VecPath.All.Length - 1 ? $"else if ({v.Condition})"
                : "else // portable: Vector128 is SSE or NEON where present, software otherwise";
            using (w.Block(header))
            {
                body(v);
            }
        }
    }

    /// <summary>ReLU and LeakyReLU fused into a kernel's register epilogue; others are applied afterwards.</summary>
    private static string FastActivation(VecPath v, Act act, string a) => act switch
    {
        Act.ReLU => $"{v.Vec}.Max({a}, {v.T}.Zero)",
        Act.LeakyReLU => $"{v.Vec}.ConditionalSelect({v.Vec}.GreaterThan({a}, {v.T}.Zero), {a}, {a} * {F(FusedLeakySlope)})",
        _ => a,
    };

    /// <summary>Sigmoid and Tanh over a whole output, vectorised by TensorPrimitives.</summary>
    private static void EmitSlowActivation(CodeWriter w, Act act, string y, int count)
    {
        if (act == Act.Sigmoid)
            w.Line($"global::System.Numerics.Tensors.TensorPrimitives.Sigmoid(new global::System.ReadOnlySpan<float>({y}, {count}), new global::System.Span<float>({y}, {count}));");
        else if (act == Act.Tanh)
            w.Line($"global::System.Numerics.Tensors.TensorPrimitives.Tanh(new global::System.ReadOnlySpan<float>({y}, {count}), new global::System.Span<float>({y}, {count}));");
    }

    /// <summary>The slope of the Activation.LeakyReLU shorthand on Conv2D and Dense (the separate layer takes its own).</summary>
    private const double FusedLeakySlope = 0.01;

    private static string ScalarActivation(Act act, string z) => act switch
    {
        Act.ReLU => $"global::System.MathF.Max({z}, 0f)", // NaN stays NaN, as torch.relu
        Act.LeakyReLU => $"({z} > 0f ? {z} : {z} * {F(FusedLeakySlope)})",
        _ => z, // Sigmoid and Tanh are applied over the whole output afterwards
    };

    /// <summary>Max and average pooling. Padded cells never win a max; the average's divisor follows LAYERS.md.</summary>
    private static void EmitPool(CodeWriter w, LayerSpec l)
    {
        string m = Method(l);
        bool max = l.Kind == LayerKind.MaxPool2D;
        int C = l.Input.C, H = l.Input.H, W = l.Input.W, Ho = l.Output.H, Wo = l.Output.W, K = l.KernelH, S = l.Stride;
        void Window()
        {
            w.Line($"int y0 = oy * {S} - {l.PadTop}, x0 = ox * {S} - {l.PadLeft};");
            w.Line($"int y1 = global::System.Math.Min(y0 + {K}, {H}), x1 = global::System.Math.Min(x0 + {K}, {W});");
            w.Line("if (y0 < 0) y0 = 0;");
            w.Line("if (x0 < 0) x0 = 0;");
        }

        w.Line($"/// <summary>{Doc(l.Name)}: {(max ? "max" : "average")} pooling {l.Input} → {l.Output}, {K}×{K} window, stride {S}.</summary>");
        using (w.Member($"internal static void {m}_Forward(float* x, float* y, float* p, float* ws)"))
        {
            if (K == 2 && S == 2 && l.PadTop + l.PadBottom + l.PadLeft + l.PadRight == 0)
            {
                EmitPool2x2(w, l, max);
            }
            else
            {
                // Separable: each output row's window rows are combined in vectors, then each output takes its columns.
                w.Line($"global::Unrolled.Runtime.Pooling.Forward(x, y, {C}, {H}, {W}, {Ho}, {Wo}, {K}, {S}, {l.PadTop}, {l.PadLeft}, max: {(max ? "true" : "false")}, realCells: {(l.SamePadding ? "true" : "false")});");
            }
        }

        w.Line($"/// <summary>{Doc(l.Name)} backward: {(max ? "the gradient goes to the first maximum of each window" : "the gradient is spread evenly over each window")}.</summary>");
        using (w.Member($"internal static void {m}_Backward(float* x, float* y, float* dy, float* dx, float* p, float* g, float* ws)"))
        {
            if (max && K == 2 && S == 2 && l.PadTop + l.PadBottom + l.PadLeft + l.PadRight == 0)
            {
                // Every window writes all four of its cells; only rows or columns no window covers need zeroing.
                if (H != 2 * Ho || W != 2 * Wo) w.Line($"new global::System.Span<float>(dx, {C * H * W}).Clear();");
                EmitMaxPool2x2Backward(w, l);
            }
            else if (!max)
            {
                // The row of output gradients is spread over one input row, which is added to each of the window's rows.
                w.Line($"global::Unrolled.Runtime.Pooling.AverageBackward(dy, dx, {C}, {H}, {W}, {Ho}, {Wo}, {K}, {S}, {l.PadTop}, {l.PadLeft}, realCells: {(l.SamePadding ? "true" : "false")});");
            }
            else
            {
                w.Line($"new global::System.Span<float>(dx, {C * H * W}).Clear();");
                using (w.Block($"for (int c = 0; c < {C}; c++)"))
                {
                    w.Line($"float* xc = x + c * {H * W};");
                    w.Line($"float* dxc = dx + c * {H * W};");
                    w.Line($"float* dyc = dy + c * {Ho * Wo};");
                    using (w.Block($"for (int oy = 0; oy < {Ho}; oy++)"))
                    using (w.Block($"for (int ox = 0; ox < {Wo}; ox++)"))
                    {
                        Window();
                        w.Line($"float d = dyc[oy * {Wo} + ox];");
                        w.Line("int at = y0 * " + W + " + x0;");
                        w.Line("float best = float.NegativeInfinity;");
                        using (w.Block("for (int iy = y0; iy < y1; iy++)"))
                        {
                            w.Line($"for (int ix = x0; ix < x1; ix++) if (xc[iy * {W} + ix] > best) {{ best = xc[iy * {W} + ix]; at = iy * {W} + ix; }}");
                        }
                        w.Line("dxc[at] += d;");
                    }
                }
            }
        }
    }

    /// <summary>Shuffle indices that put cell 2i (<paramref name="parity"/> 0) or 2i + 1 (parity 1) of a vector in lane
    /// i of its lower half (the upper half repeats them): with a maximum or sum of the two, each column pair's result.</summary>
    private static string PairLanes(VecPath v, int parity)
        => string.Join(", ", Enumerable.Range(0, v.Lanes).Select(i => (2 * (i % (v.Lanes / 2)) + parity).ToString()));

    /// <summary>2×2 pooling with stride 2 and no padding, branch-free: one vector of input columns from each of
    /// the two rows, combined, then even and odd lanes combined (a shuffle), giving half a vector of outputs.</summary>
    private static void EmitPool2x2(CodeWriter w, LayerSpec l, bool max)
    {
        int C = l.Input.C, W = l.Input.W, Ho = l.Output.H, Wo = l.Output.W;
        string Op(VecPath v, string a, string b) => max ? $"{v.Vec}.Max({a}, {b})" : $"({a} + {b})";
        string Scalar(string a, string b) => max ? $"global::System.MathF.Max({a}, {b})" : $"({a} + {b})";
        string scale = max ? "" : " * 0.25f";
        w.Line("// vector part: 512-bit, then 256-bit for what is left (a 128-bit vector would hold only two outputs: the scalar loop does as well)");
        w.Line("bool v512 = global::Unrolled.Kernels.Use512, v256 = global::Unrolled.Kernels.Use256;");
        using (w.Block($"for (int row = 0; row < {C * Ho}; row++)"))
        {
            w.Line($"int c = row / {Ho}, oy = row % {Ho};");
            w.Line($"float* r0 = x + (c * {l.Input.H} + 2 * oy) * {W};");
            w.Line($"float* r1 = r0 + {W};");
            w.Line($"float* o = y + row * {Wo};");
            w.Line("int ox = 0;");
            foreach (VecPath v in new[] { VecPath.V512, VecPath.V256 })
            {
                int half = v.Lanes / 2;
                if (Wo < half) continue;
                using (w.Block($"if (v{v.Suffix})"))
                using (w.Block($"for (; ox + {half} <= {Wo}; ox += {half})"))
                {
                    w.Line($"{v.T} a = {Op(v, $"{v.Vec}.Load(r0 + 2 * ox)", $"{v.Vec}.Load(r1 + 2 * ox)")};");
                    w.Line($"{v.T} e = {v.Vec}.Shuffle(a, {v.Vec}.Create({PairLanes(v, 0)}));");
                    w.Line($"{v.T} d = {v.Vec}.Shuffle(a, {v.Vec}.Create({PairLanes(v, 1)}));");
                    w.Line($"{v.Half}.Store({v.Vec}.GetLower({Op(v, "e", "d")}{scale}), o + ox);");
                }
            }
            w.Line($"for (; ox < {Wo}; ox++) o[ox] = {Scalar(Scalar("r0[2 * ox]", "r0[2 * ox + 1]"), Scalar("r1[2 * ox]", "r1[2 * ox + 1]"))}{scale};");
        }
    }

    /// <summary>
    /// 2×2/2 max-pool backward without branches: each window's maximum (the forward output) is compared with
    /// its four cells; the first equal cell in row-major order (top-left, top-right, bottom-left, bottom-right)
    /// takes the gradient, and the other three are written with zero, so dx needs no clearing first.
    /// Lanes hold pairs of columns; a shuffle gives each lane its pair's output.
    /// </summary>
    private static void EmitMaxPool2x2Backward(CodeWriter w, LayerSpec l)
    {
        int C = l.Input.C, W = l.Input.W, Ho = l.Output.H, Wo = l.Output.W;
        bool narrow = Wo % 4 >= 2; // two windows left after the wider vectors: a 128-bit vector takes them
        w.Line("bool v512 = global::Unrolled.Kernels.Use512, v256 = global::Unrolled.Kernels.Use256" + (narrow ? ", v128 = global::System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated;" : ";"));
        using (w.Block($"for (int row = 0; row < {C * Ho}; row++)"))
        {
            w.Line($"int c = row / {Ho}, oy = row % {Ho};");
            w.Line($"int at = (c * {l.Input.H} + 2 * oy) * {W};");
            w.Line("float* r0 = x + at, r1 = r0 + " + W + ", d0 = dx + at, d1 = d0 + " + W + ";");
            w.Line($"float* ym = y + row * {Wo}, dym = dy + row * {Wo};");
            w.Line("int ox = 0;");
            foreach (VecPath v in narrow ? new[] { VecPath.V512, VecPath.V256, VecPath.V128 } : new[] { VecPath.V512, VecPath.V256 })
            {
                int lanes = v.Lanes, half = lanes / 2;
                if (Wo < half) continue;
                string Each(Func<int, string> f) => string.Join(", ", Enumerable.Range(0, lanes).Select(f));
                string intVec = $"global::System.Runtime.Intrinsics.Vector{lanes * 32}<int>";
                string halfZero = $"{v.Half}<float>.Zero";
                using (w.Block($"if (v{v.Suffix})"))
                {
                    w.Line($"{v.T} oddLanes = {v.Vec}.AsSingle({v.Vec}.Create({Each(i => i % 2 == 1 ? "-1" : "0")}));");
                    w.Line($"{intVec} pair = {v.Vec}.Create({Each(i => (i / 2).ToString())}), even = {v.Vec}.Create({Each(i => (i & ~1).ToString())}), partner = {v.Vec}.Create({Each(i => (i ^ 1).ToString())});");
                    using (w.Block($"for (; ox + {half} <= {Wo}; ox += {half})"))
                    {
                        w.Line($"{v.T} m = {v.Vec}.Shuffle({v.Vec}.Create({v.Half}.Load(ym + ox), {halfZero}), pair);");
                        w.Line($"{v.T} d = {v.Vec}.Shuffle({v.Vec}.Create({v.Half}.Load(dym + ox), {halfZero}), pair);");
                        w.Line($"{v.T} top = {v.Vec}.Equals({v.Vec}.Load(r0 + 2 * ox), m), bottom = {v.Vec}.Equals({v.Vec}.Load(r1 + 2 * ox), m);");
                        w.Line($"{v.T} topEven = {v.Vec}.Shuffle(top, even), bottomEven = {v.Vec}.Shuffle(bottom, even);");
                        w.Line($"{v.T} topAny = top | {v.Vec}.Shuffle(top, partner); // either cell of the top row, in both lanes of the pair");
                        w.Line($"{v.T} topWins = {v.Vec}.AndNot(top, oddLanes & topEven);");
                        w.Line($"{v.T} bottomWins = {v.Vec}.AndNot({v.Vec}.AndNot(bottom, topAny), oddLanes & bottomEven);");
                        w.Line($"{v.Vec}.Store(topWins & d, d0 + 2 * ox);");
                        w.Line($"{v.Vec}.Store(bottomWins & d, d1 + 2 * ox);");
                    }
                }
            }
            using (w.Block($"for (; ox < {Wo}; ox++)"))
            {
                w.Line("float m = ym[ox], d = dym[ox];");
                w.Line("int i = 2 * ox;");
                w.Line("bool a = r0[i] == m, b = !a && r0[i + 1] == m, c2 = !a && !b && r1[i] == m, e = !a && !b && !c2;");
                w.Line("d0[i] = a ? d : 0f; d0[i + 1] = b ? d : 0f; d1[i] = c2 ? d : 0f; d1[i + 1] = e ? d : 0f;");
            }
        }
    }

    private static void EmitGlobalAvgPool(CodeWriter w, LayerSpec l)
    {
        string m = Method(l);
        int C = l.Input.C, HW = l.Input.H * l.Input.W;
        w.Line($"/// <summary>{Doc(l.Name)}: mean over {l.Input.H}×{l.Input.W} of each of {C} channels.</summary>");
        using (w.Member($"internal static void {m}_Forward(float* x, float* y, float* p, float* ws)"))
        {
            w.Line($"for (int c = 0; c < {C}; c++) y[c] = global::System.Numerics.Tensors.TensorPrimitives.Sum(new global::System.ReadOnlySpan<float>(x + c * {HW}, {HW})) / {F(HW)};");
        }
        using (w.Member($"internal static void {m}_Backward(float* x, float* y, float* dy, float* dx, float* p, float* g, float* ws)"))
        {
            w.Line($"for (int c = 0; c < {C}; c++) new global::System.Span<float>(dx + c * {HW}, {HW}).Fill(dy[c] / {F(HW)});");
        }
    }

    private static void EmitCopyLayer(CodeWriter w, LayerSpec l, string what)
    {
        string m = Method(l);
        int n = l.Input.Size;
        w.Line($"/// <summary>{Doc(l.Name)}: {what}.</summary>");
        using (w.Member($"internal static void {m}_Forward(float* x, float* y, float* p, float* ws)"))
        {
            w.Line($"global::System.Buffer.MemoryCopy(x, y, {n} * sizeof(float), {n} * sizeof(float));");
        }
        using (w.Member($"internal static void {m}_Backward(float* x, float* y, float* dy, float* dx, float* p, float* g, float* ws)"))
        {
            w.Line($"global::System.Buffer.MemoryCopy(dy, dx, {n} * sizeof(float), {n} * sizeof(float));");
        }
    }

    private static void EmitDropout(CodeWriter w, LayerSpec l)
    {
        string m = Method(l);
        int n = l.Input.Size;
        EmitCopyLayer(w, l, $"dropout p = {l.P.ToString(System.Globalization.CultureInfo.InvariantCulture)}; identity at inference");
        w.Line($"/// <summary>{Doc(l.Name)} in training: y = x · mask, the mask holding 0 or 1/(1 − p).</summary>");
        using (w.Member($"internal static void {m}_TrainForward(float* x, float* y, float* mask)"))
        {
            w.Line($"global::System.Numerics.Tensors.TensorPrimitives.Multiply(new global::System.ReadOnlySpan<float>(x, {n}), new global::System.ReadOnlySpan<float>(mask, {n}), new global::System.Span<float>(y, {n}));");
        }
        using (w.Member($"internal static void {m}_TrainBackward(float* dy, float* dx, float* mask)"))
        {
            w.Line($"global::System.Numerics.Tensors.TensorPrimitives.Multiply(new global::System.ReadOnlySpan<float>(dy, {n}), new global::System.ReadOnlySpan<float>(mask, {n}), new global::System.Span<float>(dx, {n}));");
        }
    }

    private static void EmitActivationLayer(CodeWriter w, LayerSpec l)
    {
        string m = Method(l);
        int n = l.Input.Size;
        string span(string p) => $"new global::System.Span<float>({p}, {n})";
        string ro(string p) => $"new global::System.ReadOnlySpan<float>({p}, {n})";
        w.Line($"/// <summary>{Doc(l.Name)}: {l.Kind} over {n} values.</summary>");
        using (w.Member($"internal static void {m}_Forward(float* x, float* y, float* p, float* ws)"))
        {
            switch (l.Kind)
            {
                case LayerKind.ReLU:
                    w.Line($"global::System.Numerics.Tensors.TensorPrimitives.Max({ro("x")}, 0f, {span("y")});");
                    break;
                case LayerKind.LeakyReLU:
                    w.Line($"for (int i = 0; i < {n}; i++) y[i] = x[i] > 0f ? x[i] : x[i] * {F(l.Slope)};");
                    break;
                case LayerKind.Sigmoid:
                    w.Line($"global::System.Numerics.Tensors.TensorPrimitives.Sigmoid({ro("x")}, {span("y")});");
                    break;
                case LayerKind.Tanh:
                    w.Line($"global::System.Numerics.Tensors.TensorPrimitives.Tanh({ro("x")}, {span("y")});");
                    break;
            }
        }
        using (w.Member($"internal static void {m}_Backward(float* x, float* y, float* dy, float* dx, float* p, float* g, float* ws)"))
        {
            switch (l.Kind)
            {
                case LayerKind.ReLU:
                    w.Line($"global::Unrolled.Runtime.Ops.RectifierBackward(dx, dy, x, {n}, 0f);");
                    break;
                case LayerKind.LeakyReLU:
                    w.Line($"global::Unrolled.Runtime.Ops.RectifierBackward(dx, dy, x, {n}, {F(l.Slope)});");
                    break;
                default:
                    w.Line($"global::System.Buffer.MemoryCopy(dy, dx, {n} * sizeof(float), {n} * sizeof(float));");
                    w.Line($"global::Unrolled.Runtime.Ops.ScaleByDerivative(dx, y, {n}, global::Unrolled.Runtime.Ops.{(l.Kind == LayerKind.Sigmoid ? "Sigmoid" : "Tanh")}, 0f);");
                    break;
            }
        }
    }

    private static void EmitSoftmax(CodeWriter w, LayerSpec l)
    {
        string m = Method(l);
        int n = l.Input.Size;
        w.Line($"/// <summary>{Doc(l.Name)}: softmax over {n} features.</summary>");
        using (w.Member($"internal static void {m}_Forward(float* x, float* y, float* p, float* ws)"))
        {
            w.Line($"global::System.Numerics.Tensors.TensorPrimitives.SoftMax(new global::System.ReadOnlySpan<float>(x, {n}), new global::System.Span<float>(y, {n}));");
        }
        using (w.Member($"internal static void {m}_Backward(float* x, float* y, float* dy, float* dx, float* p, float* g, float* ws)"))
        {
            w.Line("float dot = 0f;");
            w.Line($"for (int i = 0; i < {n}; i++) dot += dy[i] * y[i];");
            w.Line($"for (int i = 0; i < {n}; i++) dx[i] = y[i] * (dy[i] - dot);");
        }
    }

    /// <summary>LocalResponseNorm across channels: b_c = a_c / (k + α/n · Σ a_j²)^β.</summary>
    private static void EmitLrn(CodeWriter w, LayerSpec l, WorkspacePlan plan)
    {
        string m = Method(l);
        int C = l.Input.C, HW = l.Input.H * l.Input.W, n = l.LrnSize;
        int lo = n / 2, hi = (n - 1) / 2;
        w.Line($"/// <summary>{Doc(l.Name)}: LRN over {n} channels (c − {lo} … c + {hi}), α = {D(l.Alpha)}, β = {D(l.Beta)}, k = {D(l.K)}.</summary>");
        string args = $"{C}, {HW}, {lo}, {hi}, {F(l.Alpha / n)}, {F(l.Beta)}, {F(l.K)}";
        using (w.Member($"internal static void {m}_Forward(float* x, float* y, float* p, float* ws)"))
        {
            w.Line($"global::Unrolled.Runtime.Pooling.LrnForward(x, y, ws + {plan.Lrn}, {args});");
        }
        w.Line("// dx_i = dy_i · s_i^−β − 2αβ/n · x_i · Σ_{c : i in window(c)} dy_c · y_c / s_c, vectorised over each channel's values");
        using (w.Member($"internal static void {m}_Backward(float* x, float* y, float* dy, float* dx, float* p, float* g, float* ws)"))
        {
            w.Line($"global::Unrolled.Runtime.Pooling.LrnBackward(x, y, dy, dx, ws + {plan.Lrn}, {args});");
        }
    }

    /// <summary>BatchNorm: per-sample pieces; the batch statistics are reduced by the training driver.</summary>
    private static void EmitBatchNorm(CodeWriter w, LayerSpec l)
    {
        string m = Method(l);
        int C = l.Input.C, HW = l.Input.H * l.Input.W;
        int mean = l.BufferOffset, var = l.BufferOffset + C;
        // Channels of at least a vector of values go through the vectorised helpers; a value or a few per
        // channel (batch norm after Dense) stay inline, where a call per channel would cost more than the work.
        bool vec = HW >= 16;
        string Affine() => vec ? $"global::Unrolled.Runtime.Ops.ScaleShift(x + c * {HW}, y + c * {HW}, {HW}, scale, shift);"
                               : $"for (int i = 0; i < {HW}; i++) y[c * {HW} + i] = x[c * {HW} + i] * scale + shift;";
        w.Line($"/// <summary>{Doc(l.Name)}: batch norm over {C} channel(s) of {HW} value(s); inference uses the running statistics.</summary>");
        using (w.Member($"internal static void {m}_Forward(float* x, float* y, float* p, float* buf)"))
        {
            using (w.Block($"for (int c = 0; c < {C}; c++)"))
            {
                w.Line($"float scale = p[{l.WeightOffset} + c] / global::System.MathF.Sqrt(buf[{var} + c] + 1e-5f);");
                w.Line($"float shift = p[{l.BiasOffset} + c] - buf[{mean} + c] * scale;");
                w.Line(Affine());
            }
        }
        w.Line("/// <summary>Adds this sample's per-channel sum and sum of squares to <paramref name=\"acc\"/> (2 × C doubles).</summary>");
        using (w.Member($"internal static void {m}_Sums(float* x, double* acc)"))
        {
            using (w.Block($"for (int c = 0; c < {C}; c++)"))
            {
                if (vec)
                    w.Line($"global::Unrolled.Runtime.Ops.SumAndSquares(x + c * {HW}, {HW}, out double s, out double q);");
                else
                {
                    w.Line("double s = 0, q = 0;");
                    w.Line($"for (int i = 0; i < {HW}; i++) {{ double v = x[c * {HW} + i]; s += v; q += v * v; }}");
                }
                w.Line($"acc[c] += s; acc[{C} + c] += q;");
            }
        }
        w.Line("/// <summary>Normalises with the batch statistics: y = (x − mean) · invStd · γ + β.</summary>");
        using (w.Member($"internal static void {m}_Apply(float* x, float* y, float* p, float* stats)"))
        {
            using (w.Block($"for (int c = 0; c < {C}; c++)"))
            {
                w.Line($"float scale = stats[{C} + c] * p[{l.WeightOffset} + c], shift = p[{l.BiasOffset} + c] - stats[c] * scale;");
                w.Line(Affine());
            }
        }
        w.Line("/// <summary>Adds this sample's Σ dy and Σ dy · x̂ per channel to <paramref name=\"acc\"/>.</summary>");
        using (w.Member($"internal static void {m}_GradSums(float* x, float* dy, float* stats, double* acc)"))
        {
            using (w.Block($"for (int c = 0; c < {C}; c++)"))
            {
                if (vec)
                    w.Line($"global::Unrolled.Runtime.Ops.GradientSums(dy + c * {HW}, x + c * {HW}, stats[c], stats[{C} + c], {HW}, out double s, out double q);");
                else
                {
                    w.Line("double s = 0, q = 0;");
                    w.Line($"float mu = stats[c], inv = stats[{C} + c];");
                    w.Line($"for (int i = 0; i < {HW}; i++) {{ double d = dy[c * {HW} + i]; s += d; q += d * ((x[c * {HW} + i] - mu) * inv); }}");
                }
                w.Line($"acc[c] += s; acc[{C} + c] += q;");
            }
        }
        w.Line("/// <summary>dx = γ · invStd / M · (M · dy − Σdy − x̂ · Σ(dy · x̂)), M values per channel in the batch.</summary>");
        using (w.Member($"internal static void {m}_GradApply(float* x, float* dy, float* dx, float* p, float* stats, float* sums, float count)"))
        {
            using (w.Block($"for (int c = 0; c < {C}; c++)"))
            {
                w.Line($"float mu = stats[c], inv = stats[{C} + c], k = p[{l.WeightOffset} + c] * inv / count;");
                w.Line($"float sd = sums[c], sdx = sums[{C} + c];");
                w.Line(vec ? $"global::Unrolled.Runtime.Ops.BatchNormInputGradient(x + c * {HW}, dy + c * {HW}, dx + c * {HW}, {HW}, mu, inv, k, count, sd, sdx);"
                           : $"for (int i = 0; i < {HW}; i++) {{ int e = c * {HW} + i; float xh = (x[e] - mu) * inv; dx[e] = k * (count * dy[e] - sd - xh * sdx); }}");
            }
        }
    }
}
