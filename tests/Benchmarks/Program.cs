// The project's side of the speed comparison described in BENCHMARKS.md: the same four networks, the
// same three modes and the same line format as shared/peers/torch_peer.py, with peer=unrolled.
//
//   dotnet run -c Release --project tests/Benchmarks -- [--quick] [--models LeNet5,...] [--threads 1,2] [--vector 512|256|128]
//
// Each line adds gflops (forward: 2 FLOPs per multiply-add; train: 3x the forward FLOPs) and peak_pct,
// the percentage of the machine's single-core fp32 FMA peak (measured at start, widest vectors) x threads.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text.RegularExpressions;
using System.Threading;
using Unrolled;

namespace Benchmarks;

internal static class Program
{
    private sealed record Model(string Name, Func<INetwork> Create, string Summary, double TableMflop);

    // The forward MFLOP / image column of BENCHMARKS.md, printed next to the generator's own count as a check.
    private static readonly Model[] s_models =
    {
        new("LeNet5", () => new LeNet5(), LeNet5.Summary, 0.83),
        new("SimpleConvNet", () => new SimpleConvNet(), SimpleConvNet.Summary, 1.73),
        new("KerasBaseline", () => new KerasBaseline(), KerasBaseline.Summary, 1.3),
        new("CifarVgg", () => new CifarVgg(), CifarVgg.Summary, 51),
        // The suite (Suite.cs); the MFLOP column is the generator's own count.
        new("AlexNetSmall", () => new AlexNetSmall(), AlexNetSmall.Summary, double.NaN),
        new("AllConv", () => new AllConv(), AllConv.Summary, double.NaN),
        new("TanhLeNet", () => new TanhLeNet(), TanhLeNet.Summary, double.NaN),
        new("ResStem", () => new ResStem(), ResStem.Summary, double.NaN),
        new("Wide", () => new Wide(), Wide.Summary, double.NaN),
        new("BnVgg", () => new BnVgg(), BnVgg.Summary, double.NaN),
        new("OddSizes", () => new OddSizes(), OddSizes.Summary, double.NaN),
        new("SoftmaxHead", () => new SoftmaxHead(), SoftmaxHead.Summary, double.NaN),
    };

    private const int TrainBatch = 64;

    private static int Main(string[] args)
    {
        CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
        Thread.CurrentThread.CurrentCulture = CultureInfo.InvariantCulture;

        bool quick = false;
        string models = string.Join(",", s_models.Select(m => m.Name));
        string threadList = "1,2";
        int? vector = null;
        string batchList = "1,64";
        bool replicate = false;
        string modes = "train,infer";
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--quick": quick = true; break;
                case "--models": models = Next(); break;
                case "--threads": threadList = Next(); break;
                case "--vector": vector = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                // Diagnostics beyond the peer's fixed set: other inference batch sizes, one sample repeated
                // through the whole inference batch, and a subset of the modes.
                case "--batches": batchList = Next(); break;
                case "--replicate": replicate = true; break;
                case "--modes": modes = Next(); break;
                case "-h" or "--help":
                    Console.WriteLine("usage: Benchmarks [--quick] [--models LeNet5,SimpleConvNet,KerasBaseline,CifarVgg] [--threads 1,2] [--vector 512|256|128]\n" +
                                      "       diagnostics: [--modes train,infer] [--batches 1,64] [--replicate (every inference sample the same)]");
                    return 0;
                default:
                    Console.Error.WriteLine($"unknown argument {args[i]}");
                    return 2;
            }
        }
        if (vector is int bits) Kernels.MaxVectorBits = bits;
        double window = quick ? 0.5 : 2.0;
        int[] inferBatches = batchList.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray();
        bool doTrain = modes.Contains("train"), doInfer = modes.Contains("infer");
        int[] threads = threadList.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray();
        var selected = new List<Model>();
        foreach (string name in models.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            Model? m = s_models.FirstOrDefault(x => string.Equals(x.Name, name, StringComparison.OrdinalIgnoreCase));
            if (m is null) { Console.Error.WriteLine($"unknown model {name}; known: {string.Join(",", s_models.Select(x => x.Name))}"); return 2; }
            selected.Add(m);
        }

        Console.WriteLine($"# unrolled benchmark: {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}, " +
                          $"{Environment.ProcessorCount} cores, server_gc={System.Runtime.GCSettings.IsServerGC}, window={window}s");
        Console.WriteLine($"active_path={Kernels.ActivePath} max_vector_bits={Kernels.MaxVectorBits} " +
                          $"avx512f={Avx512F.IsSupported} fma={Fma.IsSupported} vector512_accelerated={Vector512.IsHardwareAccelerated}");

        // The machine's fused multiply-add peak on one core.
        double peak512 = 0, peak256 = 0;
        if (Avx512F.IsSupported)
        {
            peak512 = FmaPeak(Fma512, 12 * 16 * 2);
            Console.WriteLine($"fma_peak vec=512 gflops={peak512:F1}");
        }
        if (Fma.IsSupported)
        {
            peak256 = FmaPeak(Fma256, 12 * 8 * 2);
            Console.WriteLine($"fma_peak vec=256 gflops={peak256:F1}");
        }
        double peak = Math.Max(peak512, peak256);
        Console.WriteLine($"# peak_pct is relative to {peak:F1} GFLOP/s (best fma_peak) x threads");

        // One core's read bandwidth from beyond its L2 (a 1,728,000-byte buffer: SimpleConvNet's Dense(100) weights),
        // the bound of a batch-1 pass over weights that do not stay in L2.
        double readGBps = ReadBandwidth(1_728_000);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"read_bandwidth bytes=1728000 gbps={readGBps:F1}"));

        foreach (Model m in selected)
        {
            long macs = MacsFromSummary(m.Summary);
            Console.WriteLine($"# {m.Name}: {macs:N0} multiply-adds/image = {2.0 * macs / 1e6:F2} forward MFLOP/image (BENCHMARKS.md: {m.TableMflop}), parameters={m.Create().Parameters.Length}");
            long weightBytes = m.Create().Tensors.Where(t => t.Kind == TensorKind.Parameter).Sum(t => 4L * t.Length);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"# {m.Name}: {weightBytes:N0} bytes of parameters; reading them once at read_bandwidth takes {weightBytes / readGBps / 1e3:F1} us"));
        }

        foreach (int t in threads)
        {
            foreach (Model m in selected)
            {
                double fwdFlops = 2.0 * MacsFromSummary(m.Summary);
                INetwork net = m.Create();
                net.MaxDegreeOfParallelism = t;
                var rng = new Random(0);

                // train: forward, mean cross-entropy, backward, plain SGD on a batch of 64 random inputs and labels.
                float[] x = Gaussian(rng, TrainBatch * net.InputSize);
                int[] labels = new int[TrainBatch];
                for (int i = 0; i < labels.Length; i++) labels[i] = rng.Next(net.OutputSize);
                Optimizer sgd = Optimizer.Sgd(0.01f);
                double us;
                bool firstUse = t == threads[0];
                if (doTrain)
                {
                    if (firstUse) FirstCall(m.Name, "train", () => net.TrainStep(x, labels, sgd));
                    us = TimeUs(() => net.TrainStep(x, labels, sgd), window);
                    Report(m.Name, "train", TrainBatch, t, us, 3 * fwdFlops * TrainBatch, peak);
                }
                if (!doInfer) continue;

                // inference, batch 1 (latency) and batch 64 (throughput).
                foreach (int batch in inferBatches)
                {
                    float[] xb = Gaussian(rng, batch * net.InputSize);
                    if (replicate)
                        for (int i = 1; i < batch; i++) Array.Copy(xb, 0, xb, i * net.InputSize, net.InputSize);
                    float[] y = new float[batch * net.OutputSize];
                    if (firstUse && batch == inferBatches[0]) FirstCall(m.Name, "infer", () => net.Forward(xb, y));
                    us = TimeUs(() => net.Forward(xb, y), window);
                    Report(m.Name, "infer", batch, t, us, fwdFlops * batch, peak);
                }
            }
        }
        return 0;
    }

    /// <summary>
    /// Times the first call of a mode on a fresh network: it includes compiling that network's generated
    /// kernels (the JIT; methods marked AggressiveOptimization are compiled fully optimised at once) and, for
    /// the first model of the run, the runtime library's shared code.
    /// </summary>
    private static void FirstCall(string model, string mode, Action fn)
    {
        var sw = Stopwatch.StartNew();
        fn();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# first_call model={model} mode={mode} ms={sw.Elapsed.TotalMilliseconds:F1}"));
    }

    private static void Report(string model, string mode, int batch, int threads, double us, double flopsPerBatch, double peak)
    {
        double gflops = flopsPerBatch / (us * 1e3);
        double pct = peak > 0 ? 100 * gflops / (peak * threads) : double.NaN;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"peer=unrolled model={model} mode={mode} batch={batch} threads={threads} img_per_s={batch / (us * 1e-6):F0} us_per_batch={us:F1} gflops={gflops:F2} peak_pct={pct:F1}"));
    }

    private static long MacsFromSummary(string summary)
    {
        Match match = Regex.Match(summary, @"Multiply-adds per sample:\s*([\d,]+)");
        if (!match.Success) throw new InvalidOperationException("The generated Summary has no 'Multiply-adds per sample' line:\n" + summary);
        return long.Parse(match.Groups[1].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture);
    }

    private static float[] Gaussian(Random rng, int n)
    {
        var a = new float[n];
        for (int i = 0; i < n; i += 2)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double r = Math.Sqrt(-2 * Math.Log(u1));
            a[i] = (float)(r * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < n) a[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
        }
        return a;
    }

    /// <summary>
    /// Warms up (at least 5 calls and 0.3 s; and, within 1.5 s, at least 30 calls so that tiered compilation
    /// has promoted the generated kernels), then times calls for a window of at least <paramref name="window"/>
    /// seconds and 10 calls, cuts the calls into 5..20 consecutive slices and returns the median over slices
    /// of the microseconds per call.
    /// </summary>
    private static double TimeUs(Action fn, double window)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var sw = Stopwatch.StartNew();
        int warm = 0;
        while (true)
        {
            fn();
            warm++;
            double s = sw.Elapsed.TotalSeconds;
            if (warm >= 5 && s >= 0.3 && (warm >= 30 || s >= 1.5)) break;
        }

        var stamps = new List<long>(1 << 16) { Stopwatch.GetTimestamp() };
        long start = stamps[0];
        long windowTicks = (long)(window * Stopwatch.Frequency);
        while (true)
        {
            fn();
            long now = Stopwatch.GetTimestamp();
            stamps.Add(now);
            if (now - start >= windowTicks && stamps.Count - 1 >= 10) break;
        }
        int n = stamps.Count - 1;
        int slices = Math.Clamp(n / 2, 5, 20);
        var perCall = new double[slices];
        for (int k = 0; k < slices; k++)
        {
            int b = (int)((long)k * n / slices), e = (int)((long)(k + 1) * n / slices);
            perCall[k] = (stamps[e] - stamps[b]) * 1e6 / Stopwatch.Frequency / (e - b);
        }
        return Median(perCall);
    }

    private static double Median(double[] v)
    {
        var s = (double[])v.Clone();
        Array.Sort(s);
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }

    // ---- Read bandwidth: sum a buffer larger than L2 with four independent vector accumulators ----

    /// <summary>Best GB/s over repeated sums of a <paramref name="bytes"/>-byte buffer (noise only lowers it).</summary>
    private static unsafe double ReadBandwidth(int bytes)
    {
        int n = bytes / sizeof(float) / 64 * 64;
        float* buffer = (float*)NativeMemory.AlignedAlloc((nuint)n * sizeof(float), 64);
        try
        {
            new Span<float>(buffer, n).Fill(1f);
            float sink = 0;
            for (int i = 0; i < 200; i++) sink += SumFloats(buffer, n);
            double best = 0;
            var run = Stopwatch.StartNew();
            for (int r = 0; r < 400 && (r < 50 || run.Elapsed.TotalSeconds < 0.3); r++)
            {
                long t0 = Stopwatch.GetTimestamp();
                sink += SumFloats(buffer, n);
                double s = (Stopwatch.GetTimestamp() - t0) / (double)Stopwatch.Frequency;
                best = Math.Max(best, (double)n * sizeof(float) / s / 1e9);
            }
            if (float.IsNaN(sink)) Console.WriteLine("# (sink)");
            return best;
        }
        finally { NativeMemory.AlignedFree(buffer); }
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe float SumFloats(float* p, int n)
    {
        Vector<float> s0 = Vector<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
        int step = Vector<float>.Count;
        for (int i = 0; i + 4 * step <= n; i += 4 * step)
        {
            s0 += Vector.Load(p + i); s1 += Vector.Load(p + i + step);
            s2 += Vector.Load(p + i + 2 * step); s3 += Vector.Load(p + i + 3 * step);
        }
        return Vector.Sum((s0 + s1) + (s2 + s3));
    }

    // ---- FMA peak: independent fused multiply-adds on one thread, 12 accumulators (more than latency x ports) ----

    /// <summary>Best GFLOP/s over several timed runs (the peak is a maximum; noise only lowers it).</summary>
    private static double FmaPeak(Func<long, float> kernel, int flopsPerIteration)
    {
        for (int i = 0; i < 3; i++) kernel(100_000); // JIT and warm the core's clocks
        long iters = 1_000_000;
        while (true)
        {
            var sw = Stopwatch.StartNew();
            kernel(iters);
            if (sw.Elapsed.TotalSeconds >= 0.05) break;
            iters *= 2;
        }
        double best = 0;
        var run = Stopwatch.StartNew();
        float sink = 0;
        for (int r = 0; r < 20 && (r < 5 || run.Elapsed.TotalSeconds < 0.6); r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            sink += kernel(iters);
            double s = (Stopwatch.GetTimestamp() - t0) / (double)Stopwatch.Frequency;
            best = Math.Max(best, (double)iters * flopsPerIteration / s / 1e9);
        }
        if (float.IsNaN(sink)) Console.WriteLine("# (sink)");
        return best;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Fma512(long iterations)
    {
        Vector512<float> m = Vector512.Create(0.9999f), a = Vector512.Create(1e-5f);
        Vector512<float> c0 = Vector512.Create(0.00f), c1 = Vector512.Create(0.01f), c2 = Vector512.Create(0.02f), c3 = Vector512.Create(0.03f);
        Vector512<float> c4 = Vector512.Create(0.04f), c5 = Vector512.Create(0.05f), c6 = Vector512.Create(0.06f), c7 = Vector512.Create(0.07f);
        Vector512<float> c8 = Vector512.Create(0.08f), c9 = Vector512.Create(0.09f), c10 = Vector512.Create(0.10f), c11 = Vector512.Create(0.11f);
        for (long i = 0; i < iterations; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(c0, m, a); c1 = Avx512F.FusedMultiplyAdd(c1, m, a);
            c2 = Avx512F.FusedMultiplyAdd(c2, m, a); c3 = Avx512F.FusedMultiplyAdd(c3, m, a);
            c4 = Avx512F.FusedMultiplyAdd(c4, m, a); c5 = Avx512F.FusedMultiplyAdd(c5, m, a);
            c6 = Avx512F.FusedMultiplyAdd(c6, m, a); c7 = Avx512F.FusedMultiplyAdd(c7, m, a);
            c8 = Avx512F.FusedMultiplyAdd(c8, m, a); c9 = Avx512F.FusedMultiplyAdd(c9, m, a);
            c10 = Avx512F.FusedMultiplyAdd(c10, m, a); c11 = Avx512F.FusedMultiplyAdd(c11, m, a);
        }
        Vector512<float> s = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11));
        return Vector512.Sum(s);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Fma256(long iterations)
    {
        Vector256<float> m = Vector256.Create(0.9999f), a = Vector256.Create(1e-5f);
        Vector256<float> c0 = Vector256.Create(0.00f), c1 = Vector256.Create(0.01f), c2 = Vector256.Create(0.02f), c3 = Vector256.Create(0.03f);
        Vector256<float> c4 = Vector256.Create(0.04f), c5 = Vector256.Create(0.05f), c6 = Vector256.Create(0.06f), c7 = Vector256.Create(0.07f);
        Vector256<float> c8 = Vector256.Create(0.08f), c9 = Vector256.Create(0.09f), c10 = Vector256.Create(0.10f), c11 = Vector256.Create(0.11f);
        for (long i = 0; i < iterations; i++)
        {
            c0 = Fma.MultiplyAdd(c0, m, a); c1 = Fma.MultiplyAdd(c1, m, a);
            c2 = Fma.MultiplyAdd(c2, m, a); c3 = Fma.MultiplyAdd(c3, m, a);
            c4 = Fma.MultiplyAdd(c4, m, a); c5 = Fma.MultiplyAdd(c5, m, a);
            c6 = Fma.MultiplyAdd(c6, m, a); c7 = Fma.MultiplyAdd(c7, m, a);
            c8 = Fma.MultiplyAdd(c8, m, a); c9 = Fma.MultiplyAdd(c9, m, a);
            c10 = Fma.MultiplyAdd(c10, m, a); c11 = Fma.MultiplyAdd(c11, m, a);
        }
        Vector256<float> s = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11));
        return Vector256.Sum(s);
    }
}
