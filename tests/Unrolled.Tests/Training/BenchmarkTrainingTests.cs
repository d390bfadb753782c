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
    /// <summary>
    /// The benchmark networks take a few training steps.
    /// </summary>
    public class BenchmarkTrainingTests
    {
        // ---- The benchmark networks train --------------------------------------------------------

        [Theory]
        [MemberData(nameof(Benchmarks.Names), MemberType = typeof(Benchmarks))]
        public void BenchmarkNetworkTakesThreeSteps(string name)
        {
            const int Batch = 8;
            var network = Benchmarks.All[name].Create(17);
            var rng = new Random(name.Length * 31 + 5);
            float[] input = TrainingHelpers.Uniform(rng, Batch * network.InputSize);
            int[] labels = TrainingHelpers.Labels(rng, Batch, network.OutputSize);
            float[] before = network.Parameters.ToArray();
            var sgd = Optimizer.Sgd(0.01f, momentum: 0.9f);
            var losses = new List<float>();
            for (int step = 0; step < 3; step++) losses.Add(network.TrainStep(input, labels, sgd));

            Assert.All(losses, l => Assert.True(float.IsFinite(l) && l > 0, $"{name}: losses {string.Join(", ", losses)}"));
            // Default initialisation gives small logits: the first loss is near ln 10.
            Assert.True(Math.Abs(losses[0] - Math.Log(10)) < 0.5, $"{name}: first loss {losses[0]}, expected about ln 10 = 2.30");
            Assert.True(losses[2] < losses[0], $"{name}: three steps on one batch did not lower its loss: {string.Join(", ", losses)}");
            // KerasBaseline's conv1.bias feeds batch norm, which subtracts the batch mean: its gradient is exactly zero
            // in theory (only rounding noise in PyTorch), so it may stay put; it must at least be negligible.
            var mathematicallyZero = name == "KerasBaseline" ? new[] { "conv1.bias" } : Array.Empty<string>();
            foreach (string zero in mathematicallyZero)
            {
                var t = network.Tensors.Single(t => t.Name == zero);
                double largest = 0;
                foreach (float g in network.Gradients) largest = Math.Max(largest, Math.Abs(g));
                foreach (float g in network.Gradients.Slice(t.Offset, t.Length))
                    Assert.True(Math.Abs(g) <= 1e-4 * largest, $"{name}: {zero} has gradient {g}, expected about 0 (largest {largest})");
            }
            var unchanged = network.Tensors.Where(t => t.Kind == TensorKind.Parameter && !mathematicallyZero.Contains(t.Name))
                .Where(t => network.Parameters.Slice(t.Offset, t.Length).SequenceEqual(before.AsSpan(t.Offset, t.Length)))
                .Select(t => t.Name).ToList();
            Assert.True(unchanged.Count == 0, $"{name}: tensors unchanged by three steps: {string.Join(", ", unchanged)}");
            Assert.All(network.Counters.ToArray(), c => Assert.Equal(3, c));
        }
    }
}
