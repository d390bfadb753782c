using System;
using System.Collections.Generic;
using Unrolled.Generator.Model;
using static Unrolled.Generator.CodeWriter;

namespace Unrolled.Generator;

/// <summary>Conv2D: forward and backward kernels, specialised to one layer's shapes.</summary>
internal static partial class Emitter
{
    private static void EmitConv(CodeWriter w, LayerSpec l, WorkspacePlan plan, bool first)
    {
        if (Strategy.Choose(l) == ConvStrategy.PatchGemm)
        {
            EmitPatchConv(w, l, plan, first);
            return;
        }
        EmitConvKernel(w, l, plan, plan.FusedPools.Contains(l.Index));
        string m = Method(l);
        w.Line($"/// <summary>{Doc(l.Name)}: {l.Input} → {l.Output}, {l.KernelH}×{l.KernelW} kernel, stride {l.Stride}, padding {l.PadTop},{l.PadBottom},{l.PadLeft},{l.PadRight}; {N(l.MultiplyAdds)} multiply-adds.</summary>");
        using (w.Member($"internal static void {m}_Forward(float* x, float* y, float* p, float* ws)"))
        {
            w.Line($"{m}_Convolve(x, y, p + {l.WeightOffset}, {(l.HasBias ? $"p + {l.BiasOffset}" : "null")}, ws);");
        }
        LayerSpec? t = first ? null : Strategy.InputGradientSpec(l);
        if (t is not null) EmitConvKernel(w, t, plan);
        EmitConvBackward(w, l, plan, first, t);
    }

    /// <summary>
    /// A PatchGemm convolution. <c>_Gather</c> copies each output pixel's C×Kh×Kw patch (zeros where it reads
    /// padding) into a row of A. Forward, per sample: the Dense kernels compute A · Wᵀ + bias (and the activation)
    /// into T, pixels × filters, and T is transposed into y, filters × pixels. Backward, over groups of samples
    /// (<see cref="Strategy.PatchGroup"/>): every pixel of every sample in the group is a row, so the Dense backward
    /// kernels reuse each block of weights across all of them: dW += dZᵀ · A and dA = dZ · W; then each row of dA is
    /// added back into the input gradient at the pixels its patch read (col2im).
    /// </summary>
    private static void EmitPatchConv(CodeWriter w, LayerSpec l, WorkspacePlan plan, bool first)
    {
        int C = l.Input.C, H = l.Input.H, W = l.Input.W, F = l.Output.C, Ho = l.Output.H, Wo = l.Output.W;
        int KH = l.KernelH, KW = l.KernelW, S = l.Stride, KK = KH * KW, P = Ho * Wo;
        int PP = Strategy.PatchPitch(l), FP = Strategy.FilterPitch(l);
        string m = Method(l);

        w.Line($"/// <summary>{Doc(l.Name)}: writes the {P} patches of one sample as rows of A, {PP} floats apart (zeros where a patch reads padding).</summary>");
        using (w.Member($"internal static void {m}_Gather(float* x, float* A)"))
        {
            using (w.Block($"for (int q = 0; q < {P}; q++)"))
            {
                w.Line($"int iy0 = q / {Wo} * {S} - {l.PadTop}, ix0 = q % {Wo} * {S} - {l.PadLeft};");
                w.Line($"bool inside = ix0 >= 0 && ix0 + {KW} <= {W};");
                w.Line($"float* r = A + q * {PP};");
                using (w.Block($"for (int c = 0; c < {C}; c++)"))
                using (w.Block($"for (int ky = 0; ky < {KH}; ky++)"))
                {
                    w.Line($"float* dst = r + c * {KK} + ky * {KW};");
                    w.Line("int iy = iy0 + ky;");
                    using (w.Block($"if ((uint)iy >= {H}u)"))
                    {
                        w.Line($"for (int kx = 0; kx < {KW}; kx++) dst[kx] = 0f;");
                        w.Line("continue;");
                    }
                    w.Line($"float* src = x + (c * {H} + iy) * {W} + ix0;");
                    w.Line($"if (inside) for (int kx = 0; kx < {KW}; kx++) dst[kx] = src[kx];");
                    w.Line($"else for (int kx = 0; kx < {KW}; kx++) dst[kx] = (uint)(ix0 + kx) < {W}u ? src[kx] : 0f;");
                }
            }
        }

        w.Line($"/// <summary>{Doc(l.Name)}: {l.Input} → {l.Output}, {KH}×{KW} kernel, stride {S}, padding {l.PadTop},{l.PadBottom},{l.PadLeft},{l.PadRight}; {N(l.MultiplyAdds)} multiply-adds.</summary>");
        using (w.Member($"internal static void {m}_Forward(float* x, float* y, float* p, float* ws)"))
        {
            w.Line($"float* A = ws + {plan.Patches}; // {P} patch rows, pitch {PP}");
            w.Line($"float* T = A + {(long)P * PP}; // {P} pixels × {F} filters, pitch {FP}");
            w.Line($"{m}_Gather(x, A);");
            w.Line($"{Method(Strategy.PatchDense(l))}_Forward(A, {PP}, T, {FP}, {P}, p);");
            w.Line($"for (int f = 0; f < {F}; f++) for (int q = 0; q < {P}; q++) y[f * {P} + q] = T[q * {FP} + f];");
        }
        EmitDense(w, Strategy.PatchDense(l), first: true, backward: false);

        int group = Strategy.PatchGroup(l);
        long rows = (long)group * P;
        w.Line($"/// <summary>{Doc(l.Name)} backward over <paramref name=\"count\"/> samples, {group} at a time ({rows} patch rows): bias and weight gradients{(first ? "" : ", and the input gradient")}; dy becomes dz = dy · act'(y) in place.</summary>");
        LayerSpec grad = Strategy.PatchGradDense(l);
        using (w.Member($"internal static void {m}_Backward(float* x, int sx, float* y, int sy, float* dy, int sdy, float* dx, int sdx, int count, float* p, float* g, float* ws)"))
        {
            w.Line($"float* A = ws + {plan.Patches}; // patch rows, pitch {PP}");
            w.Line($"float* T = A + {rows * PP}; // dz rows (pixel × filter), pitch {FP}");
            if (!first) w.Line($"float* D = T + {rows * FP}; // input-gradient rows, pitch {PP}");
            using (w.Block($"for (int n0 = 0; n0 < count; n0 += {group})"))
            {
                w.Line($"int ns = global::System.Math.Min({group}, count - n0);");
                using (w.Block("for (int a = 0; a < ns; a++)"))
                {
                    w.Line("float* da = dy + (long)(n0 + a) * sdy;");
                    if (l.Activation != Act.None)
                        w.Line($"global::Unrolled.Runtime.Ops.ScaleByDerivative(da, y + (long)(n0 + a) * sy, {F * P}, {(int)l.Activation}, {CodeWriter.F(FusedLeakySlope)});");
                    w.Line($"float* ta = T + a * {(long)P * FP};");
                    w.Line($"for (int f = 0; f < {F}; f++) for (int q = 0; q < {P}; q++) ta[q * {FP} + f] = da[f * {P} + q];");
                    w.Line($"{m}_Gather(x + (long)(n0 + a) * sx, A + a * {(long)P * PP});");
                }
                w.Line($"{Method(grad)}_Backward(A, {PP}, null, 0, T, {FP}, {(first ? "null" : "D")}, {PP}, ns * {P}, p, g);");
                if (!first)
                {
                    w.Line("// col2im: each patch row's gradient goes back to the input pixels its patch read");
                    using (w.Block("for (int a = 0; a < ns; a++)"))
                    {
                        w.Line("float* xa = dx + (long)(n0 + a) * sdx;");
                        w.Line($"new global::System.Span<float>(xa, {C * H * W}).Clear();");
                        using (w.Block($"for (int q = 0; q < {P}; q++)"))
                        {
                            w.Line($"int iy0 = q / {Wo} * {S} - {l.PadTop}, ix0 = q % {Wo} * {S} - {l.PadLeft};");
                            w.Line($"float* r = D + (a * {P} + q) * {PP};");
                            using (w.Block($"for (int c = 0; c < {C}; c++)"))
                            using (w.Block($"for (int ky = 0; ky < {KH}; ky++)"))
                            {
                                w.Line("int iy = iy0 + ky;");
                                w.Line($"if ((uint)iy >= {H}u) continue;");
                                w.Line($"float* src = r + c * {KK} + ky * {KW};");
                                w.Line($"float* dst = xa + (c * {H} + iy) * {W} + ix0;");
                                w.Line($"for (int kx = 0; kx < {KW}; kx++) if ((uint)(ix0 + kx) < {W}u) dst[kx] += src[kx];");
                            }
                        }
                    }
                }
            }
        }
        EmitDense(w, grad, first, forward: false);
    }

    /// <summary>Pad, register tiles and driver of one convolution: <c>{m}_Convolve(x, y, weights, bias, ws)</c>, and
    /// with <paramref name="pooled"/> also <c>{m}_ConvolvePool</c>, which ends in the 2×2/2 max pool after it.</summary>
    private static void EmitConvKernel(CodeWriter w, LayerSpec l, WorkspacePlan plan, bool pooled = false)
    {
        ConvGeometry g = plan.Geometry[l.Index];
        string m = Method(l);
        int C = l.Input.C, H = l.Input.H, W = l.Input.W, S = g.S;

        // Pad and phase-split the input. Borders were zeroed when the workspace was allocated and are never written.
        w.Line($"/// <summary>{Doc(l.Name)}: copies a {C}×{H}×{W} input into the zero-bordered, phase-split layout ({g.Hp} rows × {g.PitchP} columns × {g.Phases} phase(s) per channel).</summary>");
        using (w.Member($"internal static void {m}_Pad(float* x, float* P)"))
        {
            using (w.Block($"for (int c = 0; c < {C}; c++)"))
            using (w.Block($"for (int iy = 0; iy < {H}; iy++)"))
            {
                w.Line($"float* src = x + (c * {H} + iy) * {W};");
                w.Line($"float* row = P + c * {g.Plane} + (iy + {l.PadTop}) * {g.PitchP};");
                if (S == 1)
                    w.CopyFloats($"row + {l.PadLeft}", "src", W);
                else
                {
                    using (w.Block($"for (int ix = 0; ix < {W}; ix++)"))
                    {
                        w.Line($"int col = ix + {l.PadLeft};");
                        w.Line($"row[(col % {S}) * {g.Phase} + col / {S}] = src[ix];");
                    }
                }
            }
        }

        EmitConvDriver(w, l, plan, pooled: false);
        if (pooled) EmitConvDriver(w, l, plan, pooled: true);
    }

    /// <summary>
    /// Register tiles for each vector path and the driver that runs them after the Pad step:
    /// <c>{m}_Convolve(x, y, weights, bias, ws)</c>, or with <paramref name="pooled"/> <c>{m}_ConvolvePool</c>, the
    /// convolution followed by a 2×2/2 max pool (inference), y being the pool's output. Pooled tiles hold an even
    /// number of output rows; their epilogue takes the maximum of each row pair, then of each column pair (even and
    /// odd lanes, a shuffle), and stores half a vector.
    /// </summary>
    private static void EmitConvDriver(CodeWriter w, LayerSpec l, WorkspacePlan plan, bool pooled)
    {
        ConvGeometry g = plan.Geometry[l.Index];
        string m = Method(l);
        int C = l.Input.C, F = l.Output.C, Ho = l.Output.H, Wo = l.Output.W, KH = l.KernelH, KW = l.KernelW;
        int shrink = pooled ? 2 : 1, width = Wo / shrink;
        var tiles = new Dictionary<VecPath, ConvTile>();
        foreach (VecPath v in VecPath.All)
        {
            ConvTile t = ChooseTile(v, g, F, Ho, Wo, pooled);
            tiles[v] = t;
            foreach (var (ft, rt) in t.Variants())
                EmitConvTile(w, l, g, v, t, ft, rt, pooled);
        }

        w.Line(pooled
            ? $"/// <summary>{Doc(l.Name)} and the 2×2/2 max pool after it: {l.Input} → {F}×{Ho / 2}×{width}, for inference.</summary>"
            : $"/// <summary>{Doc(l.Name)}: {l.Input} → {l.Output} with the given weights [{F}, {C}, {KH}, {KW}] and bias.</summary>");
        using (w.Member($"internal static void {m}_{(pooled ? "ConvolvePool" : "Convolve")}(float* x, float* y, float* wt, float* bias, float* ws)"))
        {
            w.Line($"float* P = ws + {plan.PhaseOffset[l.Index]};");
            w.Line($"{m}_Pad(x, P);");
            string rows = pooled ? "pooled rows" : "rows";
            EmitPathSwitch(w, v =>
            {
                ConvTile t = tiles[v];
                int pitch = t.Pitch / shrink;
                bool direct = pitch == width;
                w.Line(direct ? $"float* O = y; // {rows} are stored exactly {width} wide: the output is written in place"
                              : $"float* O = ws + {plan.Tile}; // {rows} {pitch} wide, compacted to {width} below");
                w.Line($"// {t.Ft} filters × {t.Rt} rows × {t.Cv} vector(s) of {v.Lanes} columns" +
                       (t.Paired ? $" and, per row pair, one vector of two {v.Lanes / 2}-column row ends" : "") + " in registers" +
                       (pooled ? ", pooled" : ""));
                EmitConvTileLoops(w, l, g, v, t, pooled);
                if (!direct)
                {
                    using (w.Block($"for (int r = 0; r < {F * Ho / shrink}; r++)"))
                    {
                        w.Line($"float* o = O + r * {pitch}, t = y + r * {width};");
                        w.CopyFloats("t", "o", width);
                    }
                }
            });
            if (!pooled) EmitSlowActivation(w, l.Activation, "y", l.Output.Size);
        }
    }

    /// <summary>
    /// The register tile of one vector path. Rows whose width is a whole number of vectors are stored exactly, in
    /// place. Rows half a vector longer than a whole number (24 columns in 16 lanes) may pair up: the two half-vector
    /// ends of rows r and r + 1 share one vector, so no lane computes a column that does not exist. Otherwise rows are
    /// computed at the geometry's pitch (a multiple of 16) and compacted afterwards. Between the paired and the
    /// padded tile the cheaper by <see cref="TileCost"/> is taken.
    /// </summary>
    private static ConvTile ChooseTile(VecPath v, ConvGeometry g, int F, int Ho, int Wo, bool pooled)
    {
        int L = v.Lanes;
        // Whole vectors of rows stored at this pitch.
        ConvTile Vectors(int pitch)
        {
            ConvTile t = pooled ? ChoosePoolTile(v, pitch / L, F, Ho) : ChooseConvTile(v, pitch / L, F, Ho);
            t.Pitch = pitch;
            return t;
        }
        if (Wo % L == 0) return Vectors(Wo);
        ConvTile padded = Vectors(g.PitchO);
        if (L < 8 || Wo % L != L / 2 || Ho % 2 != 0) return padded;
        ConvTile? paired = ChoosePairedTile(v, Wo / L, F, Ho, Wo);
        return paired is not null && TileCost(v, paired, Wo) < TileCost(v, padded, Wo) ? paired : padded;
    }

    /// <summary>
    /// Instructions per useful multiply-add in the inner loop of a tile over the whole layer (tail tiles included):
    /// FMAs plus loads (vectors of input, broadcast weights, and for a paired tile two half loads per row pair),
    /// divided by the FMAs whose lanes hold real columns. Measured on SimpleConvNet's 24-column rows, the order of
    /// this figure is the order of the tiles' speed.
    /// </summary>
    private static double TileCost(VecPath v, ConvTile t, int Wo)
    {
        double instructions = 0, useful = 0;
        foreach (var (ft, rt) in t.Variants())
        {
            int pairs = t.Paired ? rt / 2 : 0;
            double tiles = (double)(ft == t.Ft ? t.F / t.Ft : 1) * (rt == t.Rt ? t.Ho / t.Rt : 1) * (t.Pitch / t.Step(v));
            double fmas = ft * (rt * t.Cv + pairs), loads = ft + rt * t.Cv + 2 * pairs;
            instructions += tiles * (fmas + loads);
            useful += tiles * ft * rt * (t.Paired ? Wo : t.Step(v) * (double)Wo / t.Pitch) / v.Lanes;
        }
        return instructions / useful;
    }

    /// <summary>
    /// Filters × row pairs for a paired tile, the cheapest by <see cref="TileCost"/> whose accumulators fit the
    /// budget and whose accumulators and broadcast weights leave registers for the loads (more spill: measured);
    /// null when no row pair fits.
    /// </summary>
    private static ConvTile? ChoosePairedTile(VecPath v, int full, int F, int Ho, int Wo)
    {
        int perPair = 2 * full + 1, registers = v.Lanes == 16 ? 26 : 15;
        ConvTile? best = null;
        double bestCost = double.MaxValue;
        for (int ft = 1; ft <= F; ft++)
            for (int pairs = 1; pairs <= Ho / 2; pairs++)
            {
                int accumulators = ft * pairs * perPair;
                if (accumulators > v.Budget || accumulators + ft > registers) break;
                var t = new ConvTile { Ft = ft, Rt = 2 * pairs, Cv = full, F = F, Ho = Ho, Paired = true, Pitch = Wo };
                double cost = TileCost(v, t, Wo);
                if (cost < bestCost - 1e-9) { best = t; bestCost = cost; }
            }
        return best;
    }

    /// <summary>The convolution's tile with an even number of rows (fewer filters when one row pair would not fit).</summary>
    private static ConvTile ChoosePoolTile(VecPath v, int vectorsPerRow, int F, int Ho)
    {
        ConvTile t = ChooseConvTile(v, vectorsPerRow, F, Ho);
        if (t.Rt % 2 == 0) return t;
        if (t.Rt > 1) return new ConvTile { Ft = t.Ft, Rt = t.Rt - 1, Cv = t.Cv, F = F, Ho = Ho };
        // One row fitted: two rows of half as many column vectors keep the filters, else fewer filters.
        if (t.Cv % 2 == 0 && t.Ft * t.Cv <= v.Budget) return new ConvTile { Ft = t.Ft, Rt = 2, Cv = t.Cv / 2, F = F, Ho = Ho };
        int ft = Math.Max(1, Math.Min(t.Ft, v.Budget / (2 * t.Cv)));
        return new ConvTile { Ft = ft, Rt = 2, Cv = t.Cv, F = F, Ho = Ho };
    }

    private static void EmitConvBackward(CodeWriter w, LayerSpec l, WorkspacePlan plan, bool first, LayerSpec? transposed)
    {
        ConvGeometry g = plan.Geometry[l.Index];
        string m = Method(l);
        int C = l.Input.C, H = l.Input.H, W = l.Input.W, F = l.Output.C, Ho = l.Output.H, Wo = l.Output.W;
        int S = g.S;
        string wOff = l.WeightOffset.ToString(), bOff = l.BiasOffset.ToString();

        bool partials = WorkspacePlan.UsesVectorPartials(l);

        // Backward.
        w.Line($"/// <summary>{Doc(l.Name)} backward: bias and weight gradients{(first ? "" : ", and the input gradient")}.</summary>");
        using (w.Member($"internal static void {m}_Backward(float* x, float* y, float* dy, float* dx, float* p, float* g, float* ws, float* packed)"))
        {
            if (l.Activation != Act.None)
                w.Line($"global::Unrolled.Runtime.Ops.ScaleByDerivative(dy, y, {F * Ho * Wo}, {(int)l.Activation}, {CodeWriter.F(FusedLeakySlope)}); // dz = dy · act'(y), in place");
            if (transposed is not null)
            {
                w.Line($"// input gradient: dz convolved with the flipped, transposed kernel (packed once per step)");
                w.Line($"{Method(transposed)}_Convolve(dy, dx, packed, null, ws);");
            }
            w.Line($"float* P = ws + {plan.PhaseOffset[l.Index]};");
            w.Line($"{m}_Pad(x, P);");
            w.Line($"float* G = ws + {plan.Grad};");
            w.Line($"// G = dz at row pitch {g.PitchO}; tail columns stay zero so whole-vector loops are exact.");
            using (w.Block($"for (int r = 0; r < {F * Ho}; r++)"))
            {
                w.Line($"float* gr = G + r * {g.PitchO};");
                w.Line($"float* dr = dy + r * {Wo};");
                w.CopyFloats("gr", "dr", Wo);
                w.ZeroFloats("gr", Wo, g.PitchO - Wo);
            }
            if (l.HasBias)
            {
                w.Line($"for (int f = 0; f < {F}; f++) g[{bOff} + f] += global::System.Numerics.Tensors.TensorPrimitives.Sum(new global::System.ReadOnlySpan<float>(dy + f * {Ho * Wo}, {Ho * Wo}));");
            }
            w.Line($"float* gw = g + {wOff};");
            w.Line($"float* wt = p + {wOff};");
            if (partials) w.Line($"float* vp = ws + {plan.Partials}; // vector partials of gw, reduced by {m}_ReduceWeightGradient after the chunk");
            EmitPathSwitch(w, v => EmitConvWeightGrad(w, l, g, v, partials));
            if (!first && transposed is null)
            {
                w.Line($"float* D = ws + {plan.GradPhase};");
                w.Line($"new global::System.Span<float>(D, {g.PhaseSize}).Clear();");
                EmitPathSwitch(w, v => EmitConvInputGrad(w, l, g, v));
                w.Line("// Back from the padded phase layout to the public layout.");
                using (w.Block($"for (int c = 0; c < {C}; c++)"))
                using (w.Block($"for (int iy = 0; iy < {H}; iy++)"))
                {
                    w.Line($"float* dst = dx + (c * {H} + iy) * {W};");
                    w.Line($"float* row = D + c * {g.Plane} + (iy + {l.PadTop}) * {g.PitchP};");
                    if (S == 1)
                        w.CopyFloats("dst", $"row + {l.PadLeft}", W);
                    else
                    {
                        using (w.Block($"for (int ix = 0; ix < {W}; ix++)"))
                        {
                            w.Line($"int col = ix + {l.PadLeft};");
                            w.Line($"dst[ix] = row[(col % {S}) * {g.Phase} + col / {S}];");
                        }
                    }
                }
            }
        }
        if (partials)
        {
            w.Line($"/// <summary>{Doc(l.Name)}: adds the horizontal sum of each weight's vector partial to the weight gradient and zeroes the partials.</summary>");
            using (w.Member($"internal static void {m}_ReduceWeightGradient(float* g, float* ws)"))
            {
                w.Line($"float* gw = g + {wOff};");
                w.Line($"float* vp = ws + {plan.Partials};");
                EmitPathSwitch(w, v =>
                {
                    using (w.Block($"for (int i = 0; i < {l.WeightCount}; i++)"))
                    {
                        w.Line($"gw[i] += {v.Vec}.Sum({v.Vec}.Load(vp + i * {v.Lanes}));");
                        w.Line(v.Store($"{v.T}.Zero", $"vp + i * {v.Lanes}"));
                    }
                });
            }
        }
    }

    private sealed class ConvTile
    {
        public int Ft, Rt, Cv, F, Ho;
        /// <summary>Besides Cv whole vectors per row, each row pair's two half-vector ends share one vector.</summary>
        public bool Paired;
        /// <summary>Output row pitch the tile stores at: the row width when stores are exact, else the geometry's PitchO.</summary>
        public int Pitch;
        /// <summary>Columns one tile covers.</summary>
        public int Step(VecPath v) => Paired ? Pitch : Cv * v.Lanes;
        public int FTail => F % Ft;
        public int RTail => Ho % Rt;

        public IEnumerable<(int Ft, int Rt)> Variants()
        {
            yield return (Ft, Rt);
            if (RTail > 0) yield return (Ft, RTail);
            if (FTail > 0)
            {
                yield return (FTail, Rt);
                if (RTail > 0) yield return (FTail, RTail);
            }
        }
    }

    /// <summary>Picks filters × rows × column vectors held in registers, within the path's accumulator budget.</summary>
    private static ConvTile ChooseConvTile(VecPath v, int vectorsPerRow, int F, int Ho)
    {
        int cv = vectorsPerRow % 4 == 0 ? 4 : vectorsPerRow % 2 == 0 ? 2 : 1;
        cv = Math.Min(cv, Math.Max(1, v.Budget / 2));
        int ft = Math.Min(F, Math.Min(v.Budget / cv, 4));
        // Prefer a filter count that divides F exactly when one is nearly as large.
        for (int d = ft; d >= Math.Max(1, ft - 1); d--)
            if (F % d == 0) { ft = d; break; }
        int rt = Math.Max(1, Math.Min(Ho, v.Budget / (ft * cv)));
        return new ConvTile { Ft = ft, Rt = rt, Cv = cv, F = F, Ho = Ho };
    }

    private static string TileName(LayerSpec l, VecPath v, ConvTile t, int ft, int rt, bool pooled = false)
        => $"{Method(l)}_{(pooled ? "PoolTile" : "Tile")}{ft}x{rt}x{t.Cv}{(t.Paired ? "p" : "")}_{v.Suffix}";

    private static void EmitConvTile(CodeWriter w, LayerSpec l, ConvGeometry g, VecPath v, ConvTile t, int ft, int rt, bool pooled = false)
    {
        int C = l.Input.C, KH = l.KernelH, KW = l.KernelW, S = g.S, KK = KH * KW, CKK = C * KK;
        int Ho = l.Output.H, cv = t.Cv, L = v.Lanes, half = L / 2, pairs = t.Paired ? rt / 2 : 0;
        int accumulators = ft * (rt * cv + pairs);
        w.Line($"/// <summary>{Doc(l.Name)}: {ft} filter(s) × {rt} output row(s) × {cv} vector(s) of {L} columns" +
               (t.Paired ? $", and the last {half} columns of each row pair in one vector" : "") +
               $"; {accumulators} accumulators{(pooled ? "; stores the 2×2 maxima" : "")}.</summary>");
        w.Line("[global::System.Runtime.CompilerServices.MethodImpl(global::System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]");
        using (w.Member($"internal static void {TileName(l, v, t, ft, rt, pooled)}(float* P, float* wt, float* bias, float* O, int f0, int oy0, int col0)"))
        {
            for (int f = 0; f < ft; f++)
            {
                string init = l.HasBias ? $"{v.Vec}.Create(bias[f0 + {f}])" : $"{v.T}.Zero";
                for (int r = 0; r < rt; r++)
                    for (int c = 0; c < cv; c++)
                        w.Line($"{v.T} a{f}_{r}_{c} = {init};");
                for (int q = 0; q < pairs; q++)
                    w.Line($"{v.T} e{f}_{q} = {init};");
            }
            using (w.Block($"for (int c = 0; c < {C}; c++)"))
            {
                w.Line($"float* pc = P + c * {g.Plane} + oy0 * {S * g.PitchP} + col0;");
                w.Line($"float* wc = wt + f0 * {CKK} + c * {KK};");
                using (w.Block($"for (int ky = 0; ky < {KH}; ky++)"))
                {
                    w.Line($"float* pr = pc + ky * {g.PitchP};");
                    w.Line($"float* wr = wc + ky * {KW};");
                    using (w.Block($"for (int kx = 0; kx < {KW}; kx++)"))
                    {
                        w.Line(S == 1 ? "float* px = pr + kx;" : $"float* px = pr + (kx % {S}) * {g.Phase} + kx / {S};");
                        for (int f = 0; f < ft; f++) w.Line($"{v.T} w{f} = {v.Vec}.Create(wr[{f * CKK} + kx]);");
                        for (int r = 0; r < rt; r++)
                            for (int c = 0; c < cv; c++)
                            {
                                w.Line($"{v.T} x{r}_{c} = {v.Vec}.Load(px + {r * S * g.PitchP + c * L});");
                                for (int f = 0; f < ft; f++)
                                    w.Line($"a{f}_{r}_{c} = {v.Fma($"w{f}", $"x{r}_{c}", $"a{f}_{r}_{c}")};");
                            }
                        for (int q = 0; q < pairs; q++)
                        {
                            // Lower half: row 2q's last columns; upper half: row 2q + 1's.
                            w.Line($"{v.T} z{q} = {v.Vec}.Create({v.Half}.Load(px + {2 * q * S * g.PitchP + cv * L}), {v.Half}.Load(px + {(2 * q + 1) * S * g.PitchP + cv * L}));");
                            for (int f = 0; f < ft; f++)
                                w.Line($"e{f}_{q} = {v.Fma($"w{f}", $"z{q}", $"e{f}_{q}")};");
                        }
                    }
                }
            }
            int pitch = t.Pitch;
            if (pooled)
            {
                // Row pairs, then column pairs: lanes 2i and 2i + 1 meet in lane i of the lower half.
                int pooledPitch = pitch / 2;
                string Out(int f, int q, int col) => $"O + (f0 + {f}) * {Ho / 2 * pooledPitch} + (oy0 / 2 + {q}) * {pooledPitch} + col0 / 2 + {col}";
                w.Line($"{v.Vec}<int> even = {v.Vec}.Create({PairLanes(v, 0)}), odd = {v.Vec}.Create({PairLanes(v, 1)});");
                VecPath h = pairs > 0 ? v.HalfPath : v;
                if (pairs > 0)
                    w.Line($"{h.Vec}<int> evenHalf = {h.Vec}.Create({PairLanes(h, 0)}), oddHalf = {h.Vec}.Create({PairLanes(h, 1)});");
                for (int f = 0; f < ft; f++)
                    for (int r = 0; r < rt; r += 2)
                    {
                        for (int c = 0; c < cv; c++)
                        {
                            string top = FastActivation(v, l.Activation, $"a{f}_{r}_{c}"), bottom = FastActivation(v, l.Activation, $"a{f}_{r + 1}_{c}");
                            w.Line($"{v.T} m{f}_{r}_{c} = {v.Vec}.Max({top}, {bottom});");
                            w.Line($"{v.Half}.Store({v.Vec}.GetLower({v.Vec}.Max({v.Vec}.Shuffle(m{f}_{r}_{c}, even), {v.Vec}.Shuffle(m{f}_{r}_{c}, odd))), {Out(f, r / 2, c * half)});");
                        }
                        if (pairs > 0)
                        {
                            // The two rows' ends: the halves' maximum, then its column pairs: a quarter vector of outputs.
                            int q = r / 2;
                            w.Line($"{v.T} n{f}_{q} = {FastActivation(v, l.Activation, $"e{f}_{q}")};");
                            w.Line($"{h.T} k{f}_{q} = {h.Vec}.Max({v.Vec}.GetLower(n{f}_{q}), {v.Vec}.GetUpper(n{f}_{q}));");
                            string quarter = $"{h.Vec}.Max({h.Vec}.Shuffle(k{f}_{q}, evenHalf), {h.Vec}.Shuffle(k{f}_{q}, oddHalf))";
                            w.Line(StoreQuarter(v, quarter, Out(f, q, cv * half)));
                        }
                    }
            }
            else
                for (int f = 0; f < ft; f++)
                {
                    string Out(int r, int col) => $"O + (f0 + {f}) * {Ho * pitch} + (oy0 + {r}) * {pitch} + col0 + {col}";
                    for (int r = 0; r < rt; r++)
                        for (int c = 0; c < cv; c++)
                            w.Line(v.Store(FastActivation(v, l.Activation, $"a{f}_{r}_{c}"), Out(r, c * L)));
                    for (int q = 0; q < pairs; q++)
                    {
                        w.Line($"{v.T} n{f}_{q} = {FastActivation(v, l.Activation, $"e{f}_{q}")};");
                        w.Line($"{v.Half}.Store({v.Vec}.GetLower(n{f}_{q}), {Out(2 * q, cv * L)});");
                        w.Line($"{v.Half}.Store({v.Vec}.GetUpper(n{f}_{q}), {Out(2 * q + 1, cv * L)});");
                    }
                }
        }
    }

    /// <summary>Stores the lower half of <paramref name="half"/>, a vector of half <paramref name="v"/>'s width: four
    /// floats for 512-bit paths, two for 256-bit ones (as one 64-bit value: Vector64 is not accelerated on x64).</summary>
    private static string StoreQuarter(VecPath v, string half, string at) => v.Lanes switch
    {
        16 => $"global::System.Runtime.Intrinsics.Vector128.Store(global::System.Runtime.Intrinsics.Vector256.GetLower({half}), {at});",
        8 => $"global::System.Runtime.CompilerServices.Unsafe.WriteUnaligned({at}, global::System.Runtime.Intrinsics.Vector128.ToScalar(global::System.Runtime.Intrinsics.Vector128.AsDouble({half})));",
        _ => throw new InvalidOperationException("paired tiles need vectors of at least 8 lanes"),
    };

    private static void EmitConvTileLoops(CodeWriter w, LayerSpec l, ConvGeometry g, VecPath v, ConvTile t, bool pooled = false)
    {
        int fMain = l.Output.C - t.FTail, rMain = l.Output.H - t.RTail, step = t.Step(v);
        string Columns(int ft, int rt, string f0, string oy0) => step == t.Pitch
            ? $"{TileName(l, v, t, ft, rt, pooled)}(P, wt, bias, O, {f0}, {oy0}, 0);"
            : $"for (int col0 = 0; col0 < {t.Pitch}; col0 += {step}) {TileName(l, v, t, ft, rt, pooled)}(P, wt, bias, O, {f0}, {oy0}, col0);";
        void Rows(int ft, string f0)
        {
            if (rMain > 0)
            {
                using (w.Block($"for (int oy0 = 0; oy0 < {rMain}; oy0 += {t.Rt})"))
                {
                    w.Line(Columns(ft, t.Rt, f0, "oy0"));
                }
            }
            if (t.RTail > 0) w.Line(Columns(ft, t.RTail, f0, rMain.ToString()));
        }
        if (fMain > 0)
        {
            using (w.Block($"for (int f0 = 0; f0 < {fMain}; f0 += {t.Ft})"))
            {
                Rows(t.Ft, "f0");
            }
        }
        if (t.FTail > 0) Rows(t.FTail, fMain.ToString());
    }

    /// <summary>Weight gradient: gw[f,c,ky,kx] += Σ G[f,oy,·] · P[c, oy·S+ky, ·+kx]; all kx of a row in registers.</summary>
    private static void EmitConvWeightGrad(CodeWriter w, LayerSpec l, ConvGeometry g, VecPath v, bool partials)
    {
        int C = l.Input.C, F = l.Output.C, Ho = l.Output.H, KH = l.KernelH, KW = l.KernelW, S = g.S;
        int kc = Math.Min(KW, v.Budget);
        int ft = Math.Max(1, Math.Min(Math.Min(F, 4), v.Budget / kc));
        // Prefer a filter count that divides F when one is nearly as large: no narrow tail tile.
        for (int d = ft; d >= Math.Max(1, ft - 1); d--)
            if (F % d == 0) { ft = d; break; }
        int fMain = F - F % ft;
        w.Line($"// {ft} filter(s) × {kc} kernel column(s) accumulated in registers over every output row and column");
        void Tile(int nf, string f0)
        {
            using (w.Block($"for (int c = 0; c < {C}; c++)"))
            using (w.Block($"for (int ky = 0; ky < {KH}; ky++)"))
            {
                w.Line($"float* pr = P + c * {g.Plane} + ky * {g.PitchP};");
                // Kernel columns in blocks of kc: unrolled when the kernel is narrow, a loop of blocks otherwise.
                var blocks = new System.Collections.Generic.List<(int Count, string K0)>();
                int fullBlocks = KW / kc;
                if (fullBlocks <= 2)
                    for (int b = 0; b < fullBlocks; b++) blocks.Add((kc, (b * kc).ToString()));
                else
                    blocks.Add((kc, "k0"));
                if (KW % kc > 0) blocks.Add((KW % kc, (fullBlocks * kc).ToString()));
                foreach (var (n, k0) in blocks)
                {
                    string Kx(int k) => k0 == "k0" ? $"(k0 + {k})" : (int.Parse(k0) + k).ToString();
                    string Offset(int k) => k0 == "k0"
                        ? (S == 1 ? $"k0 + {k}" : $"((k0 + {k}) % {S}) * {g.Phase} + (k0 + {k}) / {S}")
                        : (((int.Parse(k0) + k) % S) * g.Phase + (int.Parse(k0) + k) / S).ToString();
                    using (k0 == "k0" ? w.Block($"for (int k0 = 0; k0 < {fullBlocks * kc}; k0 += {kc})") : w.Braces())
                    {
                        for (int f = 0; f < nf; f++)
                            for (int k = 0; k < n; k++) w.Line($"{v.T} s{f}_{k} = {v.T}.Zero;");
                        using (w.Block($"for (int oy = 0; oy < {Ho}; oy++)"))
                        {
                            w.Line($"float* gr = G + {f0} * {Ho * g.PitchO} + oy * {g.PitchO};");
                            w.Line($"float* prow = pr + oy * {S * g.PitchP};");
                            using (w.Block($"for (int col = 0; col < {g.PitchO}; col += {v.Lanes})"))
                            {
                                for (int f = 0; f < nf; f++) w.Line($"{v.T} g{f} = {v.Vec}.Load(gr + {f * Ho * g.PitchO} + col);");
                                for (int k = 0; k < n; k++)
                                {
                                    w.Line($"{v.T} x{k} = {v.Vec}.Load(prow + {Offset(k)} + col);");
                                    for (int f = 0; f < nf; f++) w.Line($"s{f}_{k} = {v.Fma($"g{f}", $"x{k}", $"s{f}_{k}")};");
                                }
                            }
                        }
                        for (int f = 0; f < nf; f++)
                            for (int k = 0; k < n; k++)
                            {
                                string tap = $"(({f0} + {f}) * {C} + c) * {KH * KW} + ky * {KW} + {Kx(k)}";
                                if (partials)
                                {
                                    w.Line($"float* vp{f}_{k} = vp + ({tap}) * {v.Lanes};");
                                    w.Line(v.Store($"{v.Vec}.Load(vp{f}_{k}) + s{f}_{k}", $"vp{f}_{k}"));
                                }
                                else
                                    w.Line($"gw[{tap}] += {v.Vec}.Sum(s{f}_{k});");
                            }
                    }
                }
            }
        }
        if (fMain > 0)
        {
            using (w.Block($"for (int f0 = 0; f0 < {fMain}; f0 += {ft})"))
            {
                Tile(ft, "f0");
            }
        }
        if (F % ft > 0) Tile(F % ft, fMain.ToString());
    }

    /// <summary>Input gradient in the padded phase layout: D[c, oy·S+ky, ·+kx] += Σ_f w[f,c,ky,kx] · G[f,oy,·].</summary>
    /// <summary>
    /// The input gradient of a strided convolution (and of a stride-1 one whose padding exceeds K − 1), in the
    /// padded phase layout D: for each kernel cell, the output-gradient rows of every filter, weighted by that
    /// filter's weight, are added to the input rows the cell read. A block of input channels × gradient-row vectors
    /// stays in registers while the filters are summed, so each loaded gradient vector serves every channel of the
    /// block (ct FMAs per load) instead of one.
    /// </summary>
    private static void EmitConvInputGrad(CodeWriter w, LayerSpec l, ConvGeometry g, VecPath v)
    {
        int C = l.Input.C, F = l.Output.C, Ho = l.Output.H, KH = l.KernelH, KW = l.KernelW, S = g.S, KK = KH * KW, CKK = C * KK;
        int vectors = g.PitchO / v.Lanes;
        int cv = Math.Min(vectors, v.Lanes == 16 ? 4 : 2);
        while (vectors % cv != 0) cv--;
        int ct = Math.Max(1, Math.Min(Math.Min(C, 8), v.Budget / cv));
        w.Line($"// {ct} input channel(s) × {cv} vector(s) of a gradient row in registers, summed over all {F} filters");
        void Block(string c0, int n)
        {
            using (w.Block($"for (int ky = 0; ky < {KH}; ky++)"))
            using (w.Block($"for (int kx = 0; kx < {KW}; kx++)"))
            {
                w.Line($"float* wk = wt + {c0} * {KK} + ky * {KW} + kx;");
                w.Line(S == 1 ? $"float* drow = D + {c0} * {g.Plane} + ky * {g.PitchP} + kx;"
                              : $"float* drow = D + {c0} * {g.Plane} + (kx % {S}) * {g.Phase} + ky * {g.PitchP} + kx / {S};");
                using (w.Block($"for (int oy = 0; oy < {Ho}; oy++)"))
                {
                    w.Line($"float* d = drow + oy * {S * g.PitchP};");
                    w.Line($"float* gr = G + oy * {g.PitchO};");
                    using (w.Block($"for (int col = 0; col < {g.PitchO}; col += {cv * v.Lanes})"))
                    {
                        for (int c = 0; c < n; c++)
                            for (int k = 0; k < cv; k++) w.Line($"{v.T} s{c}_{k} = {v.Vec}.Load(d + {c * g.Plane} + col + {k * v.Lanes});");
                        using (w.Block($"for (int f = 0; f < {F}; f++)"))
                        {
                            w.Line($"float* gf = gr + f * {Ho * g.PitchO} + col;");
                            w.Line($"float* wf = wk + f * {CKK};");
                            for (int k = 0; k < cv; k++) w.Line($"{v.T} g{k} = {v.Vec}.Load(gf + {k * v.Lanes});");
                            for (int c = 0; c < n; c++)
                            {
                                w.Line($"{v.T} w{c} = {v.Vec}.Create(wf[{c * KK}]);");
                                for (int k = 0; k < cv; k++) w.Line($"s{c}_{k} = {v.Fma($"w{c}", $"g{k}", $"s{c}_{k}")};");
                            }
                        }
                        for (int c = 0; c < n; c++)
                            for (int k = 0; k < cv; k++) w.Line(v.Store($"s{c}_{k}", $"d + {c * g.Plane} + col + {k * v.Lanes}"));
                    }
                }
            }
        }
        int full = C - C % ct;
        if (full > 0)
        {
            using (w.Block($"for (int c0 = 0; c0 < {full}; c0 += {ct})"))
            {
                Block("c0", ct);
            }
        }
        if (C % ct > 0)
        {
            using (w.Block($"// the last {C % ct} channel(s)"))
            {
                Block(full.ToString(), C % ct);
            }
        }
    }
}
