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
    /// Divergence: NaN or infinite losses and gradients refused by TrainStep, NaN inputs through Forward.
    /// </summary>
    public class DivergenceTests
    {
        // ---- Divergence: a NaN or infinite loss or gradient is reported and not applied --------------
        // These tests call TrainStep through INetwork, i.e. NetworkTraining.TrainStep, which holds the check.

        /// <summary>Everything a training step may change in a network: parameters, running statistics, counters.</summary>
        private sealed record NetworkState(float[] Parameters, float[] Buffers, long[] Counters)
        {
            public static NetworkState Of(INetwork network) =>
                new(network.Parameters.ToArray(), network.Buffers.ToArray(), network.Counters.ToArray());

            /// <summary>The parts that differ bit for bit from <paramref name="network"/>'s, or null when none does.</summary>
            public string? Difference(INetwork network)
            {
                var problems = new List<string>();
                if (!TrainingHelpers.BitwiseEqual<float>(Parameters, network.Parameters)) problems.Add("Parameters");
                if (!TrainingHelpers.BitwiseEqual<float>(Buffers, network.Buffers)) problems.Add("Buffers");
                if (!TrainingHelpers.BitwiseEqual<long>(Counters, network.Counters)) problems.Add("Counters");
                return problems.Count == 0 ? null : string.Join(", ", problems);
            }
        }

        [Fact]
        public void NaNInTheInputIsReportedAndTheStepIsNotApplied()
        {
            const int Batch = 8;
            INetwork network = new SmallKeras(3); // batch norm (running statistics, a counter) and dropout
            var rng = new Random(80);
            float[] input = TrainingHelpers.Uniform(rng, Batch * SmallKeras.InputSize);
            int[] labels = TrainingHelpers.Labels(rng, Batch, 10);
            var adam = Optimizer.Adam(0.01f);
            network.TrainStep(input, labels, adam); // Adam has moments and batch norm has statistics from a good step
            var before = NetworkState.Of(network);

            float[] poisoned = (float[])input.Clone();
            poisoned[5 * SmallKeras.InputSize + 100] = float.NaN; // one value of one sample
            var e = Assert.Throws<TrainingDivergedException>(() => network.TrainStep(poisoned, labels, adam));

            // The gradient the step computed holds NaN (batch norm spreads one sample's NaN over the batch) ...
            Assert.False(TensorPrimitives.IsFiniteAll<float>(network.Gradients), "the rejected gradient is finite");
            // ... and none of it reached the network or the optimizer: the training-mode forward pass's running
            // statistics were put back and the optimizer was not called.
            Assert.True(before.Difference(network) is null, $"the rejected step changed {before.Difference(network)}");
            Assert.Equal(1, adam.StepCount);
            Assert.Contains("Training diverged", e.Message);
            Assert.Contains("smaller learning rate", e.Message);
            Assert.Contains("NaN or infinite values", e.Message);

            // Training goes on normally with a finite batch.
            float loss = network.TrainStep(input, labels, adam);
            Assert.True(float.IsFinite(loss), $"loss {loss} after the rejected step");
            Assert.Equal(2, adam.StepCount);
            Assert.Equal(before.Counters[0] + 1, network.Counters[0]);
            Assert.True(TensorPrimitives.IsFiniteAll<float>(network.Parameters));
            Assert.True(TensorPrimitives.IsFiniteAll<float>(network.Buffers));
            Assert.False(TrainingHelpers.BitwiseEqual<float>(before.Parameters, network.Parameters), "the step after the rejected one did not train");
        }

        [Fact]
        public void RejectedStepsLeaveNoTraceInTheNetworkOrTheOptimizer()
        {
            // TorchBatchNorm2d has batch norm but no dropout (whose masks are drawn per call), so a run that meets
            // rejected steps must end bit for bit where a run that never met them ends: Adam's moments and step
            // count, the running statistics and the counter were all left alone.
            const int Batch = 6;
            var rng = new Random(81);
            var batches = Enumerable.Range(0, 4)
                .Select(_ => (Input: TrainingHelpers.Uniform(rng, Batch * TorchBatchNorm2d.InputSize), Labels: TrainingHelpers.Labels(rng, Batch, 2)))
                .ToArray();
            INetwork clean = new TorchBatchNorm2d(4), interrupted = new TorchBatchNorm2d(4);
            Optimizer cleanAdam = Optimizer.Adam(0.01f), interruptedAdam = Optimizer.Adam(0.01f);

            for (int i = 0; i < batches.Length; i++)
            {
                if (i >= 1)
                {
                    var before = NetworkState.Of(interrupted);
                    foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
                    {
                        float[] poisoned = (float[])batches[i].Input.Clone();
                        poisoned[rng.Next(poisoned.Length)] = bad;
                        Assert.Throws<TrainingDivergedException>(() => interrupted.TrainStep(poisoned, batches[i].Labels, interruptedAdam));
                        Assert.True(before.Difference(interrupted) is null, $"a step on an input holding {bad} changed {before.Difference(interrupted)}");
                    }
                }
                float cleanLoss = clean.TrainStep(batches[i].Input, batches[i].Labels, cleanAdam);
                float interruptedLoss = interrupted.TrainStep(batches[i].Input, batches[i].Labels, interruptedAdam);
                Assert.Equal(cleanLoss, interruptedLoss);
            }

            Assert.Equal(batches.Length, interruptedAdam.StepCount);
            var expected = NetworkState.Of(clean);
            Assert.True(expected.Difference(interrupted) is null, $"after rejected steps the run differs in {expected.Difference(interrupted)}");
            Assert.Equal(batches.Length, TrainingHelpers.Counter(interrupted, "bn1.num_batches_tracked"));
        }

        [Fact]
        public void AHugeLearningRateIsReportedAtTheStepThatOverflows()
        {
            // SGD with lr 10⁴ on the quadrant task: each update multiplies the weights' scale until the forward pass
            // overflows (about the fourth step). The first steps are finite; the one that is not is refused.
            var (images, labels) = LearningTests.QuadrantImages(32, seed: 13);
            INetwork network = new QuadrantNet(6);
            var sgd = Optimizer.Sgd(1e4f, momentum: 0.9f);
            NetworkState before = NetworkState.Of(network);
            TrainingDivergedException? diverged = null;
            int finiteSteps = 0;
            while (diverged is null && finiteSteps < 50)
            {
                before = NetworkState.Of(network);
                try
                {
                    float loss = network.TrainStep(images, labels, sgd);
                    Assert.True(float.IsFinite(loss), $"step {finiteSteps + 1} returned loss {loss} without throwing");
                    finiteSteps++;
                }
                catch (TrainingDivergedException e)
                {
                    diverged = e;
                }
            }

            Assert.True(diverged is not null, $"{finiteSteps} steps with lr 10⁴ did not diverge");
            Assert.True(finiteSteps >= 1, "the very first step diverged: the data, not the learning rate, is at fault");
            Assert.False(float.IsFinite(diverged!.Loss), $"the reported loss {diverged.Loss} is finite");
            Assert.Equal(finiteSteps, sgd.StepCount);
            Assert.True(before.Difference(network) is null, $"the diverged step changed {before.Difference(network)}");
            Assert.True(TensorPrimitives.IsFiniteAll<float>(network.Parameters), "the weights are not finite");
            // Nothing changed, so the same step diverges again, the same way.
            var again = Assert.Throws<TrainingDivergedException>(() => network.TrainStep(images, labels, sgd));
            Assert.Equal(diverged.Loss, again.Loss);
            Assert.True(before.Difference(network) is null);
        }

        [Fact]
        public void TheMeanSquaredErrorOverloadReportsDivergenceToo()
        {
            var rng = new Random(82);

            // NaN in a target, and an infinite input: TorchBatchNormMse (batch norm, no dropout), Adam.
            INetwork bn = new TorchBatchNormMse(5);
            float[] input = TrainingHelpers.Uniform(rng, 4 * TorchBatchNormMse.InputSize);
            float[] targets = TrainingHelpers.Uniform(rng, 4 * TorchBatchNormMse.OutputSize);
            var adam = Optimizer.Adam(0.01f);
            bn.TrainStep(input, targets, adam);
            var before = NetworkState.Of(bn);
            float[] badTargets = (float[])targets.Clone();
            badTargets[3] = float.NaN;
            var nanTarget = Assert.Throws<TrainingDivergedException>(() => bn.TrainStep(input, badTargets, adam));
            Assert.True(float.IsNaN(nanTarget.Loss), $"loss {nanTarget.Loss} for a NaN target");
            Assert.True(before.Difference(bn) is null, $"the step with a NaN target changed {before.Difference(bn)}");
            float[] badInput = (float[])input.Clone();
            badInput[6] = float.PositiveInfinity;
            Assert.Throws<TrainingDivergedException>(() => bn.TrainStep(badInput, targets, adam));
            Assert.True(before.Difference(bn) is null, $"the step with an infinite input changed {before.Difference(bn)}");
            Assert.Equal(1, adam.StepCount);
            Assert.True(float.IsFinite(bn.TrainStep(input, targets, adam)));

            // A learning rate so large that the outputs overflow (SGD lr 10 on the brightness task, about the ninth step).
            var (images, brightness) = LearningTests.BrightnessImages(16, seed: 23);
            INetwork network = new QuadrantBrightnessNet(6);
            var sgd = Optimizer.Sgd(10f);
            TrainingDivergedException? diverged = null;
            int finiteSteps = 0;
            while (diverged is null && finiteSteps < 50)
            {
                before = NetworkState.Of(network);
                try
                {
                    Assert.True(float.IsFinite(network.TrainStep(images, brightness, sgd)));
                    finiteSteps++;
                }
                catch (TrainingDivergedException e)
                {
                    diverged = e;
                }
            }

            Assert.True(diverged is not null, $"{finiteSteps} steps with lr 10 did not diverge");
            Assert.True(finiteSteps >= 1);
            Assert.False(float.IsFinite(diverged!.Loss), $"the reported loss {diverged.Loss} is finite");
            Assert.Equal(finiteSteps, sgd.StepCount);
            Assert.True(before.Difference(network) is null, $"the diverged step changed {before.Difference(network)}");
            Assert.True(TensorPrimitives.IsFiniteAll<float>(network.Parameters), "the weights are not finite");
        }

        [Fact]
        public void ForwardPassesNaNThroughToTheSampleItBelongsTo()
        {
            // Forward does not check its input (documented on INetwork.Forward): a NaN or an infinity is computed
            // with like any value, makes its own sample's outputs NaN, and leaves every other sample's outputs exactly
            // as they are without it. No exception. SmallKeras has a fused Dense ReLU, a ReLU layer, batch norm and
            // max pooling: NaN passes through all of them, as in PyTorch.
            var rng = new Random(83);
            foreach (INetwork network in new INetwork[] { new QuadrantNet(1), new TorchConvCe(1), new TorchTanhMse(1), new TorchBatchNorm2d(1), new SmallKeras(1) })
            {
                const int Batch = 3;
                int size = network.InputSize, outputs = network.OutputSize;
                float[] input = TrainingHelpers.Uniform(rng, Batch * size);
                float[] expected = new float[Batch * outputs];
                network.Forward(input, expected);
                foreach (float bad in new[] { float.NaN, float.PositiveInfinity })
                {
                    float[] poisoned = (float[])input.Clone();
                    poisoned.AsSpan(size, size).Fill(bad); // the whole middle sample
                    float[] output = new float[Batch * outputs];
                    network.Forward(poisoned, output);
                    string name = $"{network.NetworkName}, a sample of {bad}";
                    Assert.True(output.AsSpan(outputs, outputs).ToArray().All(float.IsNaN),
                        $"{name}: its outputs are [{string.Join(", ", output.AsSpan(outputs, outputs).ToArray())}]");
                    Assert.True(TrainingHelpers.BitwiseEqual<float>(expected.AsSpan(0, outputs), output.AsSpan(0, outputs)), $"{name}: sample 0 changed");
                    Assert.True(TrainingHelpers.BitwiseEqual<float>(expected.AsSpan(2 * outputs), output.AsSpan(2 * outputs)), $"{name}: sample 2 changed");
                }
            }
        }
    }
}
