using System;
using System.Collections.Generic;
using System.Linq;
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Threading;
using Unrolled.Runtime;
using Unrolled.Tests.Harness;
using Unrolled.Tests.Reference;
using Unrolled.Tests.Training;
using Xunit;

namespace Unrolled.Tests
{
    /// <summary>Shared helpers of the training tests.</summary>
    internal static class TrainingHelpers
    {
        /// <summary><paramref name="count"/> batches of SmallKeras inputs and labels, drawn from <paramref name="seed"/>.</summary>
        public static (float[] Input, int[] Labels)[] SmallKerasBatches(int count, int batch, int seed)
        {
            var rng = new Random(seed);
            return Enumerable.Range(0, count)
                .Select(_ => (Uniform(rng, batch * SmallKeras.InputSize), Labels(rng, batch, 10)))
                .ToArray();
        }

        /// <summary>The parts of two networks' state (parameters, gradients, running statistics, counters) that
        /// differ bit for bit, or null when none does.</summary>
        public static string? StateDifference(INetwork a, INetwork b)
        {
            var problems = new List<string>();
            if (!BitwiseEqual<float>(a.Parameters, b.Parameters)) problems.Add("Parameters");
            if (!BitwiseEqual<float>(a.Gradients, b.Gradients)) problems.Add("Gradients");
            if (!BitwiseEqual<float>(a.Buffers, b.Buffers)) problems.Add("Buffers");
            if (!BitwiseEqual<long>(a.Counters, b.Counters)) problems.Add("Counters");
            return problems.Count == 0 ? null : string.Join(", ", problems);
        }

        /// <summary>max|actual − expected| / max(floor, max|expected|).</summary>
        public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double floor = 1e-6)
        {
            if (actual.Length != expected.Length) throw new ArgumentException($"length {actual.Length} ≠ {expected.Length}");
            double scale = floor, difference = 0;
            for (int i = 0; i < expected.Length; i++) scale = Math.Max(scale, Math.Abs((double)expected[i]));
            for (int i = 0; i < expected.Length; i++)
            {
                double d = Math.Abs((double)actual[i] - expected[i]);
                if (double.IsNaN(d)) return double.NaN;
                difference = Math.Max(difference, d);
            }
            return difference / scale;
        }

        /// <summary>Checks a parameter-shaped span tensor by tensor (so that a small tensor is not hidden by a large one).</summary>
        public static void AssertParametersClose(INetwork network, ReadOnlySpan<float> actual, float[] expected, double tolerance, string what)
        {
            Assert.Equal(expected.Length, actual.Length);
            var problems = new List<string>();
            foreach (var t in network.Tensors.Where(t => t.Kind == TensorKind.Parameter))
            {
                var a = actual.Slice(t.Offset, t.Length);
                var e = expected.AsSpan(t.Offset, t.Length);
                double error = RelativeError(a, e);
                if (!(error <= tolerance))
                    problems.Add($"{t.Name}: error {error:g3}; got [{string.Join(", ", a.ToArray().Select(v => v.ToString("g9")))}], " +
                                 $"expected [{string.Join(", ", e.ToArray().Select(v => v.ToString("g9")))}]");
            }
            Assert.True(problems.Count == 0, $"{what} differ from PyTorch (tolerance {tolerance:g1}):\n" + string.Join("\n", problems));
        }

        public static void AssertRelativelyClose(double expected, double actual, double tolerance, string what) =>
            Assert.True(Math.Abs(actual - expected) <= tolerance * Math.Max(1e-6, Math.Abs(expected)),
                $"{what}: got {actual:g9}, expected {expected:g9} (relative tolerance {tolerance:g1})");

        /// <summary>The span of the tensor named <paramref name="name"/>.</summary>
        public static Span<float> Tensor(INetwork network, string name)
        {
            var t = network.Tensors.Single(t => t.Name == name);
            return t.Kind switch
            {
                TensorKind.Parameter => network.Parameters.Slice(t.Offset, t.Length),
                TensorKind.Buffer => network.Buffers.Slice(t.Offset, t.Length),
                _ => throw new ArgumentException($"{name} is a {t.Kind}"),
            };
        }

        public static long Counter(INetwork network, string name)
        {
            var t = network.Tensors.Single(t => t.Name == name);
            Assert.Equal(TensorKind.Counter, t.Kind);
            return network.Counters[t.Offset];
        }

        public static bool BitwiseEqual<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b) where T : struct =>
            MemoryMarshal.AsBytes(a).SequenceEqual(MemoryMarshal.AsBytes(b));

        /// <summary>Uniform values in [lo, hi).</summary>
        public static float[] Uniform(Random rng, int count, double lo = -1, double hi = 1) =>
            Enumerable.Range(0, count).Select(_ => (float)(lo + (hi - lo) * rng.NextDouble())).ToArray();

        public static int[] Labels(Random rng, int count, int classes) =>
            Enumerable.Range(0, count).Select(_ => rng.Next(classes)).ToArray();

        /// <summary>Mean cross-entropy of logits against labels, computed here in double from inference outputs.</summary>
        public static double CrossEntropy(float[] logits, int[] labels, int classes)
        {
            double total = 0;
            for (int n = 0; n < labels.Length; n++)
            {
                var z = logits.AsSpan(n * classes, classes);
                double max = double.NegativeInfinity;
                foreach (float v in z) max = Math.Max(max, v);
                double sum = 0;
                foreach (float v in z) sum += Math.Exp(v - max);
                total += max + Math.Log(sum) - z[labels[n]];
            }
            return total / labels.Length;
        }

        /// <summary>The index of the largest output of each sample.</summary>
        public static int[] ArgMax(float[] outputs, int classes) =>
            Enumerable.Range(0, outputs.Length / classes).Select(n =>
            {
                int best = 0;
                for (int j = 1; j < classes; j++) if (outputs[n * classes + j] > outputs[n * classes + best]) best = j;
                return best;
            }).ToArray();

        public static double MeanSquaredError(float[] outputs, float[] targets)
        {
            double total = 0;
            for (int i = 0; i < outputs.Length; i++) total += ((double)outputs[i] - targets[i]) * ((double)outputs[i] - targets[i]);
            return total / outputs.Length;
        }
    }

    [CollectionDefinition(nameof(TrainingSerialCollection), DisableParallelization = true)]
    public class TrainingSerialCollection { }
}
