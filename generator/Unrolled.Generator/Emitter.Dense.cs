using System;
using Unrolled.Generator.Model;
using static Unrolled.Generator.CodeWriter;

namespace Unrolled.Generator;

/// <summary>Dense: kernels over a block of samples, so that each weight row loaded serves several samples.</summary>
internal static partial class Emitter
{
    private static int DenseSamples(VecPath v) => v.Budget >= 24 ? 4 : 2;

    /// <summary>Dense weights above this many bytes (half of a 1 MB L2) are walked in alternating directions.</summary>
    private const long ZigzagWeightBytes = 512 * 1024;

    private static void EmitDense(CodeWriter w, LayerSpec l, bool first, bool forward = true, bool backward = true)
    {
        string m = Method(l);
        int In = l.Input.Size, U = l.Output.C;
        string wOff = l.WeightOffset.ToString(), bOff = l.BiasOffset.ToString();

        if (forward) EmitDenseForward(w, l);
        if (backward) EmitDenseBackward(w, l, first);
    }

    private static void EmitDenseForward(CodeWriter w, LayerSpec l)
    {
        string m = Method(l);
        int In = l.Input.Size, U = l.Output.C;
        string wOff = l.WeightOffset.ToString(), bOff = l.BiasOffset.ToString();
        // Weights larger than a core's L2 are streamed from L3 on every pass. Each pass walks the unit blocks in the
        // opposite order to the pass before, so it starts on the rows the last one left in L2. Every output is
        // still the same sum in the same order, so the flag is only a cache hint: it is a plain static (threads
        // racing on it change nothing but the order; a [ThreadStatic] failed in collectible load contexts).
        bool zigzag = (long)In * U * 4 > ZigzagWeightBytes;
        if (zigzag)
        {
            w.Line($"/// <summary>Whether the next pass over {Doc(l.Name)}'s weights walks the unit blocks backwards (a cache hint: results do not depend on it).</summary>");
            w.Line($"private static bool {m}_Reverse;");
            w.Line();
        }
        w.Line($"/// <summary>{Doc(l.Name)}: {l.Input} → {U} for <paramref name=\"count\"/> samples (rows of x every sx floats, of y every sy); {N(l.MultiplyAdds)} multiply-adds each.</summary>");
        using (w.Member($"internal static void {m}_Forward(float* x, int sx, float* y, int sy, int count, float* p)"))
        {
            w.Line($"float* wt = p + {wOff};");
            w.Line("int n = 0;");
            if (zigzag) w.Line($"bool reverse = {m}_Reverse;");
            EmitPathSwitch(w, v =>
            {
                int nt = DenseSamples(v), ut = Math.Min(4, U), vecEnd = In - In % v.Lanes;
                w.Line($"// {nt} samples × {ut} units in registers, one vector of {v.Lanes} inputs at a time; {In - vecEnd} input(s) in the scalar tail");
                void Tile(int ns, int us, string u0)
                {
                    using (w.Braces())
                    {
                        for (int a = 0; a < ns; a++)
                            for (int j = 0; j < us; j++) w.Line($"{v.T} s{a}_{j} = {v.T}.Zero;");
                        if (vecEnd > 0)
                        {
                            // Row pointers computed once, so each load in the loop is a base, the index and a constant.
                            w.Line($"float* wr = wt + {u0} * {In};");
                            for (int a = 0; a < ns; a++) w.Line($"float* xr{a} = x + (long)(n + {a}) * sx;");
                            using (w.Block($"for (int i = 0; i < {vecEnd}; i += {v.Lanes})"))
                            {
                                for (int a = 0; a < ns; a++) w.Line($"{v.T} x{a} = {v.Vec}.Load(xr{a} + i);");
                                for (int j = 0; j < us; j++)
                                {
                                    w.Line($"{v.T} w{j} = {v.Vec}.Load(wr + {j * In} + i);");
                                    for (int a = 0; a < ns; a++) w.Line($"s{a}_{j} = {v.Fma($"w{j}", $"x{a}", $"s{a}_{j}")};");
                                }
                            }
                        }
                        for (int a = 0; a < ns; a++)
                            for (int j = 0; j < us; j++)
                            {
                                w.Line($"float t{a}_{j} = {v.Vec}.Sum(s{a}_{j}){(l.HasBias ? $" + p[{bOff} + {u0} + {j}]" : "")};");
                                if (vecEnd < In) w.Line($"for (int i = {vecEnd}; i < {In}; i++) t{a}_{j} += wt[({u0} + {j}) * {In} + i] * x[(long)(n + {a}) * sx + i];");
                                w.Line($"y[(long)(n + {a}) * sy + {u0} + {j}] = {ScalarActivation(l.Activation, $"t{a}_{j}")};");
                            }
                    }
                }
                // One sample alone (batch 1, or the last of a batch) is a matrix-vector product that streams the
                // weights once: more units at a time give more independent FMA chains and memory streams.
                void Units(int ns)
                {
                    int us = ns == 1 ? Math.Min(8, U) : ut, main = U - U % us;
                    if (zigzag) w.Line("reverse = !reverse;");
                    if (main > 0)
                    {
                        using (w.Block(zigzag ? $"for (int k = 0; k < {main}; k += {us})" : $"for (int u0 = 0; u0 < {main}; u0 += {us})"))
                        {
                            if (zigzag) w.Line($"int u0 = reverse ? {main - us} - k : k;");
                            Tile(ns, us, "u0");
                        }
                    }
                    if (U % us > 0) Tile(ns, U % us, main.ToString());
                }
                if (nt > 1)
                {
                    using (w.Block($"for (; n + {nt} <= count; n += {nt})"))
                    {
                        Units(nt);
                    }
                }
                using (w.Block("for (; n < count; n++)"))
                {
                    Units(1);
                }
            });
            if (zigzag) w.Line($"{m}_Reverse = reverse;");
            if (l.Activation is Act.Sigmoid or Act.Tanh)
            {
                using (w.Block("for (int a = 0; a < count; a++)"))
                {
                    EmitSlowActivation(w, l.Activation, "y + (long)a * sy", U);
                }
            }
        }
    }

    private static void EmitDenseBackward(CodeWriter w, LayerSpec l, bool first)
    {
        string m = Method(l);
        int In = l.Input.Size, U = l.Output.C;
        string wOff = l.WeightOffset.ToString(), bOff = l.BiasOffset.ToString();
        w.Line($"/// <summary>{Doc(l.Name)} backward over <paramref name=\"count\"/> samples: dy becomes dz = dy · act'(y) in place; weight and bias gradients are added to g{(first ? "" : "; dx is written")}.</summary>");
        using (w.Member($"internal static void {m}_Backward(float* x, int sx, float* y, int sy, float* dy, int sdy, float* dx, int sdx, int count, float* p, float* g)"))
        {
            if (l.Activation != Act.None)
                w.Line($"for (int a = 0; a < count; a++) global::Unrolled.Runtime.Ops.ScaleByDerivative(dy + (long)a * sdy, y + (long)a * sy, {U}, {(int)l.Activation}, {F(FusedLeakySlope)});");
            if (l.HasBias)
                w.Line($"for (int a = 0; a < count; a++) global::System.Numerics.Tensors.TensorPrimitives.Add(new global::System.ReadOnlySpan<float>(g + {bOff}, {U}), new global::System.ReadOnlySpan<float>(dy + (long)a * sdy, {U}), new global::System.Span<float>(g + {bOff}, {U}));");
            w.Line($"float* gw = g + {wOff};");
            w.Line($"float* wt = p + {wOff};");
            EmitPathSwitch(w, v =>
            {
                int L = v.Lanes;
                int iv = v.Budget >= 24 ? 4 : 2, ut = Math.Min(4, U), uMain = U - U % ut;
                int block = iv * L, blockEnd = In - In % block, vecEnd = In - In % L;
                // The inputs in blocks of iv vectors, then single vectors up to the last whole one: i0 is the block's start.
                void InputBlocks(Action<int> body)
                {
                    if (blockEnd > 0)
                    {
                        using (w.Block($"for (int i0 = 0; i0 < {blockEnd}; i0 += {block})"))
                        {
                            body(iv);
                        }
                    }
                    if (vecEnd > blockEnd)
                    {
                        using (w.Block($"for (int i0 = {blockEnd}; i0 < {vecEnd}; i0 += {L})"))
                        {
                            body(1);
                        }
                    }
                }
                w.Line($"// weight gradient: {ut} units × {iv} vectors of inputs in registers, summed over the samples");
                void WeightTile(int us, string u0, int vectors, string i0)
                {
                    using (w.Braces())
                    {
                        for (int j = 0; j < us; j++)
                            for (int k = 0; k < vectors; k++) w.Line($"{v.T} s{j}_{k} = {v.T}.Zero;");
                        using (w.Block("for (int a = 0; a < count; a++)"))
                        {
                            w.Line("float* xa = x + (long)a * sx;");
                            w.Line("float* da = dy + (long)a * sdy;");
                            for (int k = 0; k < vectors; k++) w.Line($"{v.T} x{k} = {v.Vec}.Load(xa + {i0} + {k * L});");
                            for (int j = 0; j < us; j++)
                            {
                                w.Line($"{v.T} d{j} = {v.Vec}.Create(da[{u0} + {j}]);");
                                for (int k = 0; k < vectors; k++) w.Line($"s{j}_{k} = {v.Fma($"d{j}", $"x{k}", $"s{j}_{k}")};");
                            }
                        }
                        for (int j = 0; j < us; j++)
                            for (int k = 0; k < vectors; k++)
                            {
                                string at = $"gw + ({u0} + {j}) * {In} + {i0} + {k * L}";
                                w.Line(v.Store($"{v.Vec}.Load({at}) + s{j}_{k}", at));
                            }
                    }
                }
                // Inputs outermost: a block of inputs of every sample stays in L1 while all units use it.
                void WeightColumns(int vectors)
                {
                    if (uMain > 0)
                    {
                        using (w.Block($"for (int u0 = 0; u0 < {uMain}; u0 += {ut})"))
                        {
                            WeightTile(ut, "u0", vectors, "i0");
                        }
                    }
                    if (U % ut > 0) WeightTile(U % ut, uMain.ToString(), vectors, "i0");
                }
                InputBlocks(WeightColumns);
                if (vecEnd < In)
                {
                    w.Line("// the inputs past the last whole vector");
                    w.Line($"for (int a = 0; a < count; a++) for (int u = 0; u < {U}; u++) {{ float d = dy[(long)a * sdy + u]; for (int i = {vecEnd}; i < {In}; i++) gw[u * {In} + i] += d * x[(long)a * sx + i]; }}");
                }

                if (!first)
                {
                    int nt = DenseSamples(v);
                    w.Line($"// input gradient: {nt} samples × {iv} vectors of inputs in registers, summed over the {U} units");
                    void InputTile(int ns, int vectors, string i0)
                    {
                        using (w.Braces())
                        {
                            for (int a = 0; a < ns; a++)
                                for (int k = 0; k < vectors; k++) w.Line($"{v.T} s{a}_{k} = {v.T}.Zero;");
                            using (w.Block($"for (int u = 0; u < {U}; u++)"))
                            {
                                w.Line($"float* wr = wt + u * {In} + {i0};");
                                for (int k = 0; k < vectors; k++) w.Line($"{v.T} w{k} = {v.Vec}.Load(wr + {k * L});");
                                for (int a = 0; a < ns; a++)
                                {
                                    w.Line($"{v.T} d{a} = {v.Vec}.Create(dy[(long)(n + {a}) * sdy + u]);");
                                    for (int k = 0; k < vectors; k++) w.Line($"s{a}_{k} = {v.Fma($"d{a}", $"w{k}", $"s{a}_{k}")};");
                                }
                            }
                            for (int a = 0; a < ns; a++)
                                for (int k = 0; k < vectors; k++) w.Line(v.Store($"s{a}_{k}", $"dx + (long)(n + {a}) * sdx + {i0} + {k * L}"));
                        }
                    }
                    // Inputs outermost: a block of weight columns stays in L1 while every sample uses it.
                    void InputRows(int vectors)
                    {
                        w.Line("int n = 0;");
                        if (nt > 1)
                        {
                            using (w.Block($"for (; n + {nt} <= count; n += {nt})"))
                            {
                                InputTile(nt, vectors, "i0");
                            }
                        }
                        using (w.Block("for (; n < count; n++)"))
                        {
                            InputTile(1, vectors, "i0");
                        }
                    }
                    InputBlocks(InputRows);
                    if (vecEnd < In)
                    {
                        using (w.Block($"for (int n = 0; n < count; n++) for (int i = {vecEnd}; i < {In}; i++)"))
                        {
                            w.Line("float s = 0f;");
                            w.Line($"for (int u = 0; u < {U}; u++) s += dy[(long)n * sdy + u] * wt[u * {In} + i];");
                            w.Line("dx[(long)n * sdx + i] = s;");
                        }
                    }
                }
            });
        }
    }
}
