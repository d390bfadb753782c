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
    /// Whole training runs: small networks that must learn synthetic tasks (a classification and a regression).
    /// </summary>
    public class LearningTests
    {
        // ---- Learning a classification task ------------------------------------------------------

        /// <summary>Images of 12×12 noise in [0, 0.5) with a 3×3 blob of 1.0 inside one quadrant; the label is the
        /// quadrant (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right). Balanced: sample n is in quadrant n % 4.</summary>
        public static (float[] Images, int[] Labels) QuadrantImages(int count, int seed)
        {
            var rng = new Random(seed);
            var images = new float[count * 144];
            var labels = new int[count];
            for (int n = 0; n < count; n++)
            {
                int q = n % 4;
                labels[n] = q;
                var image = images.AsSpan(n * 144, 144);
                for (int i = 0; i < 144; i++) image[i] = (float)(0.5 * rng.NextDouble());
                int top = (q / 2) * 6 + rng.Next(0, 4), left = (q % 2) * 6 + rng.Next(0, 4);
                for (int y = top; y < top + 3; y++)
                    for (int x = left; x < left + 3; x++)
                        image[y * 12 + x] = 1f;
            }
            return (images, labels);
        }

        [Fact]
        public void ConvNetLearnsWhichQuadrantHoldsTheBlob()
        {
            const int Count = 128, Batch = 32, Steps = 300;
            var (images, labels) = QuadrantImages(Count, seed: 11);
            var network = new QuadrantNet(seed: 5);
            var adam = Optimizer.Adam(0.01f);

            // Before training: the loss ComputeGradients reports is the cross-entropy of the inference outputs.
            var logits = new float[Count * 4];
            network.Forward(images, logits);
            double initialLoss = TrainingHelpers.CrossEntropy(logits, labels, 4);
            float reported = network.ComputeGradients(images, labels);
            TrainingHelpers.AssertRelativelyClose(initialLoss, reported, 1e-5, "initial loss");
            Assert.True(initialLoss > 0.9, $"an untrained network should be near ln 4 = 1.39, got {initialLoss}");

            var firstLosses = new List<float>();
            for (int step = 0; step < Steps; step++)
            {
                int start = (step % (Count / Batch)) * Batch;
                float loss = network.TrainStep(images.AsSpan(start * 144, Batch * 144), labels.AsSpan(start, Batch), adam);
                Assert.True(float.IsFinite(loss), $"step {step}: loss {loss}");
                if (step < 4) firstLosses.Add(loss);
            }

            network.Forward(images, logits);
            double finalLoss = TrainingHelpers.CrossEntropy(logits, labels, 4);
            int[] predicted = TrainingHelpers.ArgMax(logits, 4);
            int wrong = predicted.Zip(labels).Count(p => p.First != p.Second);
            Assert.True(wrong == 0, $"{wrong} of {Count} training images misclassified after {Steps} Adam steps (loss {finalLoss:g4})");
            Assert.True(finalLoss < 0.05, $"training loss {finalLoss:g4} after {Steps} steps, first batches {string.Join(", ", firstLosses)}");
            Assert.Equal(1f, network.Evaluate(images, labels));

            // It generalises too: fresh images of the same kind.
            var (fresh, freshLabels) = QuadrantImages(64, seed: 12);
            Assert.True(network.Evaluate(fresh, freshLabels) >= 0.9f, "accuracy on unseen images below 90 %");
        }

        // ---- Learning a regression task ----------------------------------------------------------

        /// <summary>12×12 images whose quadrants have random brightness levels; the target is each quadrant's mean.</summary>
        public static (float[] Images, float[] Targets) BrightnessImages(int count, int seed)
        {
            var rng = new Random(seed);
            var images = new float[count * 144];
            var targets = new float[count * 4];
            for (int n = 0; n < count; n++)
            {
                var levels = Enumerable.Range(0, 4).Select(_ => rng.NextDouble()).ToArray();
                var sums = new double[4];
                for (int y = 0; y < 12; y++)
                    for (int x = 0; x < 12; x++)
                    {
                        int q = (y / 6) * 2 + x / 6;
                        float v = (float)(levels[q] * (0.5 + rng.NextDouble()));
                        images[n * 144 + y * 12 + x] = v;
                        sums[q] += v;
                    }
                for (int q = 0; q < 4; q++) targets[n * 4 + q] = (float)(sums[q] / 36);
            }
            return (images, targets);
        }

        [Fact]
        public void MeanSquaredErrorNetworkLearnsQuadrantBrightness()
        {
            const int Count = 64, Steps = 250;
            var (images, targets) = BrightnessImages(Count, seed: 21);
            var network = new QuadrantBrightnessNet(seed: 3);
            Assert.Equal(Loss.MeanSquaredError, network.Loss);
            var adam = Optimizer.Adam(0.01f);

            var outputs = new float[Count * 4];
            network.Forward(images, outputs);
            double initialLoss = TrainingHelpers.MeanSquaredError(outputs, targets);
            TrainingHelpers.AssertRelativelyClose(initialLoss, network.ComputeGradients(images, targets), 1e-5, "initial MSE");

            float lastLoss = float.NaN;
            for (int step = 0; step < Steps; step++)
            {
                lastLoss = network.TrainStep(images, targets, adam);
                Assert.True(float.IsFinite(lastLoss), $"step {step}: loss {lastLoss}");
            }

            network.Forward(images, outputs);
            double finalLoss = TrainingHelpers.MeanSquaredError(outputs, targets);
            Assert.True(finalLoss < initialLoss / 50, $"MSE fell only from {initialLoss:g4} to {finalLoss:g4} in {Steps} steps");
            Assert.True(lastLoss < initialLoss / 50, $"the last step reported loss {lastLoss:g4} (initial {initialLoss:g4})");

            // A fresh set: the network predicts brightness it has not seen.
            var (fresh, freshTargets) = BrightnessImages(32, seed: 22);
            var freshOutputs = new float[32 * 4];
            network.Forward(fresh, freshOutputs);
            double freshLoss = TrainingHelpers.MeanSquaredError(freshOutputs, freshTargets);
            Assert.True(freshLoss < initialLoss / 20, $"MSE on unseen images {freshLoss:g4} (initial {initialLoss:g4})");
        }
    }
}
