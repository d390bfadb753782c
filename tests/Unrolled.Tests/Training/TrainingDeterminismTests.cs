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
    /// Determinism across instances and thread counts. Not run in parallel with other tests:
    /// <see cref="Kernels.MaxVectorBits"/> must not change during a comparison.
    /// </summary>
    [Collection(nameof(TrainingSerialCollection))]
    public class TrainingDeterminismTests
    {
        private static SmallKeras Train(int seed, int threads, (float[] Input, int[] Labels)[] batches, Func<Optimizer> optimizer,
            float[]? initialParameters = null)
        {
            var network = new SmallKeras(seed) { MaxDegreeOfParallelism = threads };
            initialParameters?.CopyTo(network.Parameters);
            var o = optimizer();
            foreach (var (input, labels) in batches) network.TrainStep(input, labels, o);
            return network;
        }

        [Fact]
        public void SameSeedSameBatchesGiveBitIdenticalState()
        {
            const int Steps = 6;
            var batches = TrainingHelpers.SmallKerasBatches(Steps, 16, seed: 40);
            foreach (int threads in new[] { 1, 2 })
            {
                var a = Train(7, threads, batches, () => Optimizer.Adam(0.01f));
                var b = Train(7, threads, batches, () => Optimizer.Adam(0.01f));
                Assert.True(TrainingHelpers.StateDifference(a, b) is null, $"{threads} thread(s): two runs differ in {TrainingHelpers.StateDifference(a, b)}");
                Assert.Equal(Steps, a.Counters[0]);
                Assert.True(a.Buffers.ToArray().Any(v => v != 0 && v != 1), "running statistics were not updated");
            }

            // Dropout is really active: the same batch twice gives two different losses (masks change per step),
            // while inference (no dropout, running statistics) gives the same output twice.
            var network = new SmallKeras(7) { MaxDegreeOfParallelism = 1 };
            var (x, y) = batches[0];
            float[] parameters = network.Parameters.ToArray();
            float first = network.ComputeGradients(x, y);
            float[] firstGradients = network.Gradients.ToArray();
            float second = network.ComputeGradients(x, y);
            Assert.NotEqual(first, second);
            Assert.False(firstGradients.AsSpan().SequenceEqual(network.Gradients));
            Assert.True(parameters.AsSpan().SequenceEqual(network.Parameters));
        }

        [Fact]
        public void OneAndTwoThreadsAgree()
        {
            // Batch 16 with 2 threads: two chunks of 8 (chunks need at least 4 samples each); batch 9: 4 + 5.
            foreach (int batch in new[] { 16, 9 })
            {
                var batches = TrainingHelpers.SmallKerasBatches(4, batch, seed: 50 + batch);
                var one = Train(9, 1, batches, () => Optimizer.Sgd(0.05f, momentum: 0.9f));
                var two = Train(9, 2, batches, () => Optimizer.Sgd(0.05f, momentum: 0.9f));
                var start = new SmallKeras(9);
                // The steps really moved the parameters (so agreement is not trivial).
                Assert.True(TrainingHelpers.RelativeError(one.Parameters, start.Parameters) > 1e-3);
                TrainingHelpers.AssertParametersClose(one, two.Parameters, one.Parameters.ToArray(), 1e-5, $"batch {batch}: parameters after 1 vs 2 threads");
                double bufferError = TrainingHelpers.RelativeError(two.Buffers, one.Buffers);
                Assert.True(bufferError <= 1e-5, $"batch {batch}: running statistics differ by {bufferError:g3}");
                Assert.True(TrainingHelpers.BitwiseEqual<long>(one.Counters, two.Counters));
            }
        }

        [Fact]
        public void DifferentSeedsGiveDifferentWeightsAndMasks()
        {
            var a = new SmallKeras(7);
            var b = new SmallKeras(8);
            float[] pa = a.Parameters.ToArray(), pb = b.Parameters.ToArray();
            int same = pa.Zip(pb).Count(p => p.First == p.Second);
            // Only batch norm's γ = 1 and β = 0 (12 values) coincide.
            Assert.True(same <= 12 + pa.Length / 1000, $"{same} of {pa.Length} initial parameters coincide for seeds 7 and 8");

            // The same start and batches, but other seeds: only the dropout masks differ, and so do the results.
            var batches = TrainingHelpers.SmallKerasBatches(3, 16, seed: 60);
            var trainedA = Train(7, 1, batches, () => Optimizer.Sgd(0.05f), initialParameters: pa);
            var trainedB = Train(8, 1, batches, () => Optimizer.Sgd(0.05f), initialParameters: pa);
            Assert.False(TrainingHelpers.BitwiseEqual<float>(trainedA.Parameters, trainedB.Parameters),
                "the dropout masks do not depend on the seed");
            // Same seed, same start: identical (the difference above is the seed's doing).
            var trainedA2 = Train(7, 1, batches, () => Optimizer.Sgd(0.05f), initialParameters: pa);
            Assert.True(TrainingHelpers.BitwiseEqual<float>(trainedA.Parameters, trainedA2.Parameters));
        }
    }
}
