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
    /// Misuse of the training API: mismatched labels, inputs, loss overloads, parallelism and optimizers.
    /// </summary>
    public class TrainingApiMisuseTests
    {
        // ---- Misuse of the training API ---------------------------------------------------------

        [Fact]
        public void LabelsMustMatchTheBatchAndBeClasses()
        {
            var network = new SmallKeras(1);
            INetwork asInterface = network;
            var rng = new Random(3);
            float[] input = TrainingHelpers.Uniform(rng, 4 * SmallKeras.InputSize);
            float[] parameters = network.Parameters.ToArray();
            var sgd = Optimizer.Sgd(0.1f);

            Assert.Throws<ArgumentException>("labels", () => network.ComputeGradients(input, new int[3]));
            Assert.Throws<ArgumentException>("labels", () => network.ComputeGradients(input, new int[5]));
            Assert.Throws<ArgumentException>("labels", () => network.TrainStep(input, new int[3], sgd));
            foreach (int bad in new[] { -1, 10, int.MinValue, int.MaxValue })
            {
                int[] labels = [0, 9, bad, 1];
                var e = Assert.Throws<ArgumentOutOfRangeException>("labels", () => network.ComputeGradients(input, labels));
                Assert.Equal(bad, e.ActualValue);
                Assert.Throws<ArgumentOutOfRangeException>("labels", () => network.TrainStep(input, labels, sgd));
                Assert.Throws<ArgumentOutOfRangeException>("labels", () => asInterface.TrainStep(input, labels, sgd));
            }

            // A rejected call leaves no trace: parameters, running statistics, counters, the optimizer and the
            // dropout stream are as if it had not happened (so the next step equals a fresh network's first step).
            Assert.True(parameters.AsSpan().SequenceEqual(network.Parameters));
            Assert.Equal(0, sgd.StepCount);
            Assert.Equal(0, network.Counters[0]);
            Assert.Equal(new float[] { 0f, 0f, 0f, 0f, 0f, 0f }, TrainingHelpers.Tensor(network, "bn1.running_mean").ToArray());
            int[] good = [0, 9, 5, 1];
            var fresh = new SmallKeras(1);
            float loss = network.TrainStep(input, good, sgd);
            float freshLoss = fresh.TrainStep(input, good, Optimizer.Sgd(0.1f));
            Assert.Equal(freshLoss, loss);
            Assert.True(TrainingHelpers.BitwiseEqual<float>(fresh.Parameters, network.Parameters), "a rejected call changed the next step");
        }

        [Fact]
        public void InputMustBeAWholeNonEmptyNumberOfSamples()
        {
            var ce = new QuadrantNet(0);
            var mse = new QuadrantBrightnessNet(0);
            var sgd = Optimizer.Sgd(0.1f);
            float[] notWhole = new float[2 * 144 + 7];
            Assert.Throws<ArgumentException>("input", () => ce.ComputeGradients(notWhole, new int[2]));
            Assert.Throws<ArgumentException>("input", () => ce.ComputeGradients(new float[143], new int[1]));
            Assert.Throws<ArgumentException>("input", () => ce.TrainStep(notWhole, new int[2], sgd));
            Assert.Throws<ArgumentException>("input", () => ((INetwork)ce).TrainStep(notWhole, new int[2], sgd));
            Assert.Throws<ArgumentException>("input", () => ce.ComputeGradients(ReadOnlySpan<float>.Empty, ReadOnlySpan<int>.Empty));
            Assert.Throws<ArgumentException>("input", () => mse.ComputeGradients(notWhole, new float[8]));
            Assert.Throws<ArgumentException>("input", () => mse.ComputeGradients(ReadOnlySpan<float>.Empty, ReadOnlySpan<float>.Empty));
            Assert.Throws<ArgumentException>("input", () => ce.Forward(notWhole, new float[8]));
            // MSE targets must hold OutputSize floats per sample.
            Assert.ThrowsAny<ArgumentException>(() => mse.ComputeGradients(new float[2 * 144], new float[7]));
            Assert.ThrowsAny<ArgumentException>(() => mse.ComputeGradients(new float[2 * 144], new float[9]));
            Assert.Equal(0, sgd.StepCount);
        }

        [Fact]
        public void TheOverloadMustMatchTheDeclaredLoss()
        {
            INetwork ce = new QuadrantNet(0);
            INetwork mse = new QuadrantBrightnessNet(0);
            float[] input = new float[2 * 144];
            Assert.Throws<InvalidOperationException>(() => ce.ComputeGradients(input, new float[2 * 4]));
            Assert.Throws<InvalidOperationException>(() => ce.TrainStep(input, new float[2 * 4], Optimizer.Sgd(0.1f)));
            Assert.Throws<InvalidOperationException>(() => mse.ComputeGradients(input, new int[2]));
            Assert.Throws<InvalidOperationException>(() => mse.TrainStep(input, new int[2], Optimizer.Sgd(0.1f)));
        }

        [Fact]
        public void MaxDegreeOfParallelismMustBePositive()
        {
            INetwork network = new SmallKeras(0);
            Assert.True(network.MaxDegreeOfParallelism >= 1);
            network.MaxDegreeOfParallelism = 3;
            foreach (int bad in new[] { 0, -1, int.MinValue })
            {
                var e = Assert.Throws<ArgumentOutOfRangeException>(() => network.MaxDegreeOfParallelism = bad);
                Assert.Equal(bad, e.ActualValue);
                Assert.Equal(3, network.MaxDegreeOfParallelism);
            }
            // More threads than samples per chunk allow is fine: the batch just splits into fewer chunks.
            network.MaxDegreeOfParallelism = 64;
            Assert.True(float.IsFinite(network.ComputeGradients(new float[5 * network.InputSize], new int[5])));
        }

        [Fact]
        public void AnOptimizerServesOneNetwork()
        {
            var small = new TorchTanhMse(0);
            var other = new TorchBatchNormMse(0);
            var adam = Optimizer.Adam(0.01f);
            small.TrainStep(new float[4], new float[2], adam);
            float[] otherBefore = other.Parameters.ToArray();
            Assert.Throws<InvalidOperationException>(() => other.TrainStep(new float[8], new float[4], adam));
            Assert.Throws<InvalidOperationException>(() => ((INetwork)other).TrainStep(new float[8], new float[4], adam));
            Assert.True(otherBefore.AsSpan().SequenceEqual(other.Parameters), "the rejected step changed the parameters");
            Assert.Equal(1, adam.StepCount);
            // The first network can go on with it; after Reset the other can have it.
            small.TrainStep(new float[4], new float[2], adam);
            Assert.Equal(2, adam.StepCount);
            adam.Reset();
            other.TrainStep(new float[8], new float[4], adam);
            Assert.Equal(1, adam.StepCount);
            Assert.Throws<ArgumentNullException>("optimizer", () => small.TrainStep(new float[4], new float[2], null!));
        }
    }
}
