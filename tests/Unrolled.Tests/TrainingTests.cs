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

namespace Unrolled.Tests.Training
{
    // Networks for the training tests, compiled by the generator running as this project's analyzer.

    /// <summary>Which quadrant of a 12×12 image holds a bright 3×3 blob.</summary>
    [Network(1, 12, 12)]
    [Conv2D(8, 3, Padding = 1, Activation = Activation.ReLU)]
    [MaxPool2D(2)]
    [Conv2D(8, 3, Activation = Activation.ReLU)]
    [Flatten]
    [Dense(4)]
    public partial class QuadrantNet { }

    /// <summary>Regression: the mean brightness of each quadrant of a 12×12 image.</summary>
    [Network(1, 12, 12, Loss = Loss.MeanSquaredError)]
    [Conv2D(4, 3, Padding = 1, Activation = Activation.Tanh)]
    [AvgPool2D(2)]
    [Dense(4)]
    public partial class QuadrantBrightnessNet { }

    /// <summary>KerasBaseline (BENCHMARKS.md) scaled down to 3×16×16 and 32 hidden units: batch norm and two dropouts.</summary>
    [Network(3, 16, 16)]
    [Conv2D(6, 5, Padding = Padding.Same)]
    [BatchNorm]
    [ReLU]
    [MaxPool2D(2)]
    [Dropout(0.2)]
    [Dense(32, Activation = Activation.ReLU)]
    [Dropout(0.2)]
    [Dense(10)]
    public partial class SmallKeras { }

    /// <summary>PyTorch (a): Conv2d(1,2,3) ReLU MaxPool2d(2) Flatten Linear(8,3), cross-entropy.</summary>
    [Network(1, 6, 6)]
    [Conv2D(2, 3, Activation = Activation.ReLU)]
    [MaxPool2D(2)]
    [Flatten]
    [Dense(3)]
    public partial class TorchConvCe { }

    /// <summary>PyTorch (b1): Linear(4,3) Tanh Linear(3,2), mean squared error.</summary>
    [Network(4, Loss = Loss.MeanSquaredError)]
    [Dense(3)]
    [Tanh]
    [Dense(2)]
    public partial class TorchTanhMse { }

    /// <summary>PyTorch (b2): Linear(4,3,bias=False) BatchNorm1d(3) Sigmoid Linear(3,2), mean squared error.</summary>
    [Network(4, Loss = Loss.MeanSquaredError)]
    [Dense(3, Bias = false)]
    [BatchNorm]
    [Sigmoid]
    [Dense(2)]
    public partial class TorchBatchNormMse { }

    /// <summary>PyTorch (c): Conv2d(2,3,3,padding=1,bias=False) BatchNorm2d(3) ReLU Flatten Linear(48,2), cross-entropy.</summary>
    [Network(2, 4, 4)]
    [Conv2D(3, 3, Padding = 1, Bias = false)]
    [BatchNorm]
    [ReLU]
    [Flatten]
    [Dense(2)]
    public partial class TorchBatchNorm2d { }
}

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

    /// <summary>
    /// Whole training runs: small networks that must learn synthetic tasks, hand-checked examples against
    /// PyTorch 1.13 (loss, gradients, SGD-with-momentum and Adam updates, batch-norm running statistics),
    /// the benchmark networks taking a few steps, misuse of the training API, and divergence (NaN or infinite
    /// losses and gradients refused by TrainStep, NaN inputs through Forward).
    /// </summary>
    public class TrainingTests
    {
        // ---- 1. Learning a classification task ------------------------------------------------------

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

        // ---- 2. Learning a regression task ----------------------------------------------------------

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

        // ---- 5. Hand-checked examples against PyTorch ----------------------------------------------

        /*
        The expected values below were printed by this script (PyTorch 1.13, /usr/bin/python3). The inputs and
        weights are exact in float32: F(n, a, b, m, d)[i] = ((i*a + b) % m - m // 2) / d with d a power of two.

        # PyTorch 1.13, float64. Values F(n, a, b, m, d)[i] = ((i*a + b) % m - m // 2) / d are exact in float32.
        import torch, torch.nn as nn
        torch.set_default_dtype(torch.float64)

        def F(n, a, b, m, d, shape):
            return torch.tensor([((i * a + b) % m - m // 2) / d for i in range(n)]).reshape(shape)

        def fmt(name, t):
            print(f"{name} = [{', '.join('%.9g' % v for v in t.detach().flatten().tolist())}]")

        def params(net):
            return torch.cat([p.detach().flatten() for p in net.parameters()])

        def grads(net):
            return torch.cat([p.grad.flatten() for p in net.parameters()])

        def run(name, make, x, target, loss_fn, buffers=False):
            net = make(); net.train()
            loss = loss_fn(net(x), target); loss.backward()
            print(f"{name}.loss = {loss.item():.9g}")
            fmt(name + ".grad", grads(net))
            g = grads(net); assert g[g != 0].abs().min() > 1e-5, "tiny gradient"
            for opt_name, opt in (("sgd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
                                  ("adam", lambda p: torch.optim.Adam(p, lr=0.01))):
                net = make(); net.train(); o = opt(net.parameters()); losses = []
                for _ in range(2):
                    o.zero_grad(); loss = loss_fn(net(x), target); loss.backward(); o.step(); losses.append(loss.item())
                print(f"{name}.{opt_name}.losses = {losses[0]:.9g}, {losses[1]:.9g}")
                fmt(f"{name}.{opt_name}.params", params(net))
                if buffers:
                    for k, v in net.state_dict().items():
                        if "running" in k or "num_batches" in k: fmt(f"{name}.{opt_name}.{k}", v.double())

        # (a) cross-entropy: Conv2d(1,2,3) ReLU MaxPool2d(2) Flatten Linear(8,3), batch 2 of 1x6x6
        def make_a():
            net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))
            with torch.no_grad():
                net[0].weight.copy_(F(18, 5, 1, 11, 16, (2, 1, 3, 3))); net[0].bias.copy_(torch.tensor([3 / 256, -5 / 256]))
                net[4].weight.copy_(F(24, 7, 2, 13, 16, (3, 8))); net[4].bias.copy_(F(3, 1, 0, 3, 8, (3,)))
            return net
        xa = F(72, 11, 3, 23, 8, (2, 1, 6, 6)); ya = torch.tensor([2, 0])
        pre = make_a()[0](xa)
        assert (pre != 0).all()
        win = pre.unfold(2, 2, 2).unfold(3, 2, 2).reshape(2, 2, 2, 2, 4).relu()
        for w in win.reshape(-1, 4):
            if w.max() > 0: assert (w == w.max()).sum() == 1, "max-pool tie"
        run("a", make_a, xa, ya, nn.CrossEntropyLoss())

        # (b1) MSE: Linear(4,3) Tanh Linear(3,2), batch 3
        def make_b1():
            net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
            with torch.no_grad():
                net[0].weight.copy_(F(12, 5, 1, 11, 8, (3, 4))); net[0].bias.copy_(F(3, 2, 1, 5, 16, (3,)))
                net[2].weight.copy_(F(6, 3, 2, 7, 4, (2, 3))); net[2].bias.copy_(F(2, 1, 1, 3, 8, (2,)))
            return net
        run("b1", make_b1, F(12, 5, 2, 9, 4, (3, 4)), F(6, 3, 1, 7, 4, (3, 2)), nn.MSELoss())

        # (b2) MSE: Linear(4,3,bias=False) BatchNorm1d(3) Sigmoid Linear(3,2), batch 4
        def make_b2():
            net = nn.Sequential(nn.Linear(4, 3, bias=False), nn.BatchNorm1d(3), nn.Sigmoid(), nn.Linear(3, 2))
            with torch.no_grad():
                net[0].weight.copy_(F(12, 7, 3, 11, 8, (3, 4)))
                net[1].weight.copy_(torch.tensor([1.25, 0.75, -0.5])); net[1].bias.copy_(torch.tensor([0.25, -0.125, 0.5]))
                net[3].weight.copy_(F(6, 5, 1, 7, 4, (2, 3))); net[3].bias.copy_(F(2, 1, 0, 3, 8, (2,)))
            return net
        run("b2", make_b2, F(16, 7, 1, 13, 4, (4, 4)), F(8, 3, 2, 7, 4, (4, 2)), nn.MSELoss(), buffers=True)

        # (c) running statistics: Conv2d(2,3,3,padding=1,bias=False) BatchNorm2d(3) ReLU Flatten Linear(48,2), batch 3 of 2x4x4
        def make_c():
            net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 2))
            with torch.no_grad():
                net[0].weight.copy_(F(54, 7, 2, 13, 16, (3, 2, 3, 3)))
                net[4].weight.copy_(F(96, 5, 3, 11, 32, (2, 48))); net[4].bias.copy_(F(2, 1, 0, 3, 8, (2,)))
            return net
        xc = F(96, 11, 5, 17, 8, (3, 2, 4, 4)); yc = torch.tensor([1, 0, 1])
        net = make_c(); o = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9); losses = []
        for _ in range(2):
            o.zero_grad(); loss = nn.CrossEntropyLoss()(net(xc), yc); loss.backward(); o.step(); losses.append(loss.item())
        print(f"c.sgd.losses = {losses[0]:.9g}, {losses[1]:.9g}")
        for k, v in net.state_dict().items():
            if "running" in k or "num_batches" in k: fmt(f"c.{k}", v.double())
        fmt("c.params", params(net))
        */

        /// <summary>((i·a + b) mod m − ⌊m/2⌋) / d, the script's F (exact in float32 for d a power of two).</summary>
        private static float[] F(int n, int a, int b, int m, int d) =>
            Enumerable.Range(0, n).Select(i => (float)((double)((i * a + b) % m - m / 2) / d)).ToArray();

        private static float[] Concat(params float[][] parts) => parts.SelectMany(p => p).ToArray();

        /// <summary>What the script printed for one network: the first step's loss and gradients, and the losses and
        /// parameters of two steps of SGD(lr 0.1, momentum 0.9) and of Adam(lr 0.01), each from the initial weights.</summary>
        private sealed record TorchExpectation(float Loss, float[] Gradients, float[] SgdLosses, float[] SgdParameters,
            float[] AdamLosses, float[] AdamParameters);

        private const double TorchTolerance = 1e-5;

        /// <summary>Loads <paramref name="initial"/> (and the default batch-norm buffers), runs <paramref name="gradients"/>
        /// once and two optimizer steps per optimizer, checking each against PyTorch. <paramref name="afterSteps"/> checks
        /// anything else (running statistics) after each optimizer's two steps.</summary>
        private static void CheckAgainstPyTorch(INetwork network, float[] initial, TorchExpectation expected,
            Func<float> gradients, Func<Optimizer, float> trainStep, Action<string>? afterSteps = null)
        {
            Assert.Equal(initial.Length, network.ParameterCount);
            float[] initialBuffers = network.Buffers.ToArray();
            void Reset()
            {
                initial.CopyTo(network.Parameters);
                initialBuffers.CopyTo(network.Buffers);
                network.Counters.Clear();
            }

            Reset();
            float loss = gradients();
            TrainingHelpers.AssertRelativelyClose(expected.Loss, loss, TorchTolerance, "loss");
            TrainingHelpers.AssertParametersClose(network, network.Gradients, expected.Gradients, TorchTolerance, "gradients");
            Assert.True(initial.AsSpan().SequenceEqual(network.Parameters), "ComputeGradients changed the parameters");

            foreach (var (name, optimizer, losses, parameters) in new[]
            {
                ("SGD(lr 0.1, momentum 0.9)", (Optimizer)Optimizer.Sgd(0.1f, momentum: 0.9f), expected.SgdLosses, expected.SgdParameters),
                ("Adam(lr 0.01)", Optimizer.Adam(0.01f), expected.AdamLosses, expected.AdamParameters),
            })
            {
                Reset();
                for (int step = 0; step < 2; step++)
                    TrainingHelpers.AssertRelativelyClose(losses[step], trainStep(optimizer), TorchTolerance, $"{name} step {step + 1} loss");
                TrainingHelpers.AssertParametersClose(network, network.Parameters, parameters, TorchTolerance, $"{name}: parameters after 2 steps");
                // The updates themselves, relative to their own size (sharper than the parameters).
                float[] actualDelta = network.Parameters.ToArray().Zip(initial, (p, p0) => p - p0).ToArray();
                float[] expectedDelta = parameters.Zip(initial, (p, p0) => p - p0).ToArray();
                double deltaError = TrainingHelpers.RelativeError(actualDelta, expectedDelta);
                Assert.True(deltaError <= 1e-4, $"{name}: the two steps' updates differ from PyTorch's by {deltaError:g3} of their size");
                afterSteps?.Invoke(name);
            }
        }

        [Fact]
        public void ConvCrossEntropyMatchesPyTorch()
        {
            var network = new TorchConvCe(0);
            Assert.Equal(
                "conv1.weight[2,1,3,3] conv1.bias[2] dense1.weight[3,8] dense1.bias[3]",
                string.Join(" ", network.Tensors.Select(t => $"{t.Name}[{string.Join(",", t.Shape)}]")));
            float[] initial = Concat(F(18, 5, 1, 11, 16), [3f / 256, -5f / 256], F(24, 7, 2, 13, 16), F(3, 1, 0, 3, 8));
            float[] input = F(72, 11, 3, 23, 8);
            int[] labels = [2, 0];
            var expected = new TorchExpectation(
                Loss: 0.793564888f,
                Gradients: [0.077580706f, -0.0278535612f, 0.0871656394f, 0.325475904f, 0.000901238967f, 0.00569370566f, -0.0853631614f, 0.0296560391f, -0.0757782281f, 0.135697097f, 0.0543849492f, 0.143089111f, -0.169419781f, 0.0765609896f, -0.491394899f, 0.0100328683f, 0.09873703f, 0.0174248818f, -0.076679467f, -0.0591361078f, -0.150804554f, -0.150115958f, -0.0521244556f, -0.0514358601f, -0.0866940028f, -0.0509539288f, -0.148945431f, -0.149634027f, 0.128141808f, 0.127284527f, 0.126883209f, 0.126025927f, 0.11269999f, 0.123041715f, 0.123443033f, 0.124300315f, 0.0226627454f, 0.0228314315f, -0.0747587532f, -0.0745900671f, -0.0260059868f, -0.0720877863f, 0.0255023984f, 0.0253337123f, -0.0881402245f, 0.109732051f, -0.0215918267f],
                SgdLosses: [0.793564888f, 0.721277565f],
                SgdParameters: [-0.271661592f, 0.0709219132f, -0.336896456f, -0.0952736429f, 0.312717321f, -0.0662954705f, 0.274831098f, -0.132987271f, 0.209596234f, -0.225696216f, 0.109169016f, -0.290229418f, 0.111793027f, -0.334430593f, 0.142179324f, 0.308868233f, -0.0905302015f, 0.24433503f, 0.0335976628f, -0.00326562735f, -0.20929819f, 0.229974562f, -0.177042012f, 0.260305299f, -0.105854188f, 0.320193607f, -0.0180075442f, 0.419661306f, -0.0354811609f, -0.409901588f, 0.0278403308f, -0.346964925f, 0.0944441832f, -0.283515451f, 0.153689534f, -0.221528767f, 0.244779351f, -0.132572974f, 0.336701681f, -0.0383403734f, 0.386410005f, 0.0258218436f, -0.385681989f, 0.0518674617f, -0.102172041f, -0.0297138834f, 0.131885924f],
                AdamLosses: [0.793564888f, 0.750545068f],
                AdamParameters: [-0.269959462f, 0.0825126627f, -0.332463365f, -0.0200099906f, 0.308303345f, -0.0811206547f, 0.270005056f, -0.14488027f, 0.207506456f, -0.207474003f, 0.104988531f, -0.269971716f, 0.0825085492f, -0.33249982f, 0.0200074171f, 0.292885949f, -0.0824884057f, 0.230113833f, 0.0317076688f, 0.000384106331f, -0.230079601f, 0.207450812f, -0.16916114f, 0.268331809f, -0.10553856f, 0.329823125f, -0.0425338711f, 0.394966916f, -0.0199446704f, -0.394940165f, 0.0425635283f, -0.332438557f, 0.105103242f, -0.269909465f, 0.167588101f, -0.207415638f, 0.230315932f, -0.144993269f, 0.332486286f, -0.0425140699f, 0.394811171f, 0.0199656387f, -0.394983667f, 0.0425140594f, -0.105262602f, -0.0199052825f, 0.144952828f]);
            CheckAgainstPyTorch(network, initial, expected,
                () => network.ComputeGradients(input, labels),
                optimizer => network.TrainStep(input, labels, optimizer));
        }

        [Fact]
        public void TanhMeanSquaredErrorMatchesPyTorch()
        {
            var network = new TorchTanhMse(0);
            Assert.Equal(
                "dense1.weight[3,4] dense1.bias[3] dense2.weight[2,3] dense2.bias[2]",
                string.Join(" ", network.Tensors.Select(t => $"{t.Name}[{string.Join(",", t.Shape)}]")));
            float[] initial = Concat(F(12, 5, 1, 11, 8), F(3, 2, 1, 5, 16), F(6, 3, 2, 7, 4), F(2, 1, 1, 3, 8));
            float[] input = F(12, 5, 2, 9, 4), targets = F(6, 3, 1, 7, 4);
            var expected = new TorchExpectation(
                Loss: 0.243027515f,
                Gradients: [0.00546848994f, 0.0729097518f, -0.0136871884f, 0.0537540734f, 0.00859051076f, -0.17292871f, 0.0446039953f, -0.136915226f, 0.0432994529f, 0.032098718f, 0.0307614522f, 0.0195607174f, -0.0766227132f, 0.144053938f, -0.0501520027f, 0.0943066158f, -0.0974070626f, -0.065903241f, 0.168400577f, -0.213465564f, -0.235938998f, 0.261169908f, -0.0630588558f],
                SgdLosses: [0.243027515f, 0.213379789f],
                SgdParameters: [-0.502014912f, 0.104970023f, -0.621659424f, -0.0146744893f, 0.623315016f, -0.0769686533f, 0.488326996f, -0.211956673f, 0.362607118f, -0.38406474f, 0.241040951f, -0.505630907f, -0.0410780506f, 0.0225479193f, -0.11126467f, -0.277999347f, 0.529014935f, -0.480892106f, 0.203998794f, -0.691810785f, 0.0650948966f, -0.0725211134f, 0.14051522f],
                AdamLosses: [0.243027515f, 0.222883289f],
                AdamParameters: [-0.519895935f, 0.105030142f, -0.605218133f, -0.0199647117f, 0.605766364f, -0.10502559f, 0.480093439f, -0.230023442f, 0.355015021f, -0.39495671f, 0.230003706f, -0.519964892f, -0.042517447f, 0.0425344102f, -0.105057603f, -0.270009469f, 0.520004041f, -0.480023466f, 0.230057975f, -0.73005385f, 0.0199678515f, -0.0199778872f, 0.144584114f]);
            CheckAgainstPyTorch(network, initial, expected,
                () => network.ComputeGradients(input, targets),
                optimizer => network.TrainStep(input, targets, optimizer));
        }

        [Fact]
        public void BatchNorm1dSigmoidMeanSquaredErrorMatchesPyTorch()
        {
            var network = new TorchBatchNormMse(0);
            Assert.Equal(
                "dense1.weight[3,4] bn1.weight[3] bn1.bias[3] bn1.running_mean[3] bn1.running_var[3] bn1.num_batches_tracked[] dense2.weight[2,3] dense2.bias[2]",
                string.Join(" ", network.Tensors.Select(t => $"{t.Name}[{string.Join(",", t.Shape)}]")));
            // PyTorch's initial buffers: running_mean 0, running_var 1, num_batches_tracked 0.
            Assert.Equal(new float[] { 0f, 0f, 0f }, TrainingHelpers.Tensor(network, "bn1.running_mean").ToArray());
            Assert.Equal(new float[] { 1f, 1f, 1f }, TrainingHelpers.Tensor(network, "bn1.running_var").ToArray());
            Assert.Equal(0, TrainingHelpers.Counter(network, "bn1.num_batches_tracked"));
            float[] initial = Concat(F(12, 7, 3, 11, 8), [1.25f, 0.75f, -0.5f], [0.25f, -0.125f, 0.5f], F(6, 5, 1, 7, 4), F(2, 1, 0, 3, 8));
            float[] input = F(16, 7, 1, 13, 4), targets = F(8, 3, 2, 7, 4);
            var expected = new TorchExpectation(
                Loss: 0.31015136f,
                Gradients: [0.0259222064f, -0.0359998859f, 0.0259222064f, -0.0686393364f, -0.0500986083f, 0.164470154f, -0.0500986083f, 1.12305196e-05f, -0.00555571536f, -0.00590146655f, -0.00555571536f, 0.0119757475f, -0.0185667135f, 0.104880462f, -0.00199225078f, -0.0142333831f, 0.10059978f, -0.0166626584f, 0.24797187f, 0.199664525f, 0.255942898f, -0.16732965f, -0.196811945f, -0.219699326f, 0.306302565f, -0.303269449f],
                SgdLosses: [0.31015136f, 0.261915197f],
                SgdParameters: [-0.257642474f, 0.635485009f, 0.117357526f, -0.354773788f, 0.514766866f, -0.0477664659f, -0.485233134f, 0.374132166f, -0.123369544f, -0.62326423f, 0.251630456f, -0.253514252f, 1.25554724f, 0.720431838f, -0.499843336f, 0.254004497f, -0.151760509f, 0.504746967f, -0.568098437f, 0.696043842f, 0.180356038f, -0.204877005f, -0.696239749f, 0.559665996f, -0.206722361f, 0.081603826f],
                AdamLosses: [0.31015136f, 0.284860378f],
                AdamParameters: [-0.269989721f, 0.644973309f, 0.105010279f, -0.355002387f, 0.52001351f, -0.0200101704f, -0.47998649f, 0.357557886f, -0.10501306f, -0.604990671f, 0.26998694f, -0.269991747f, 1.27001014f, 0.730018737f, -0.485805987f, 0.270002603f, -0.144955712f, 0.519991133f, -0.519984676f, 0.730038853f, 0.230030246f, -0.230024469f, -0.730030897f, 0.519970037f, -0.144961536f, 0.0199630462f]);
            var runningStatistics = new Dictionary<string, (float[] Mean, float[] Var)>
            {
                ["SGD(lr 0.1, momentum 0.9)"] = ([0.0789379919f, -0.0337515324f, -0.0460165043f], [0.939800349f, 0.856522365f, 0.975088042f]),
                ["Adam(lr 0.01)"] = ([0.0797343746f, -0.033718861f, -0.0462031245f], [0.940845032f, 0.854873335f, 0.976227896f]),
            };
            CheckAgainstPyTorch(network, initial, expected,
                () => network.ComputeGradients(input, targets),
                optimizer => network.TrainStep(input, targets, optimizer),
                afterSteps: name =>
                {
                    var (mean, variance) = runningStatistics[name];
                    Assert.True(TrainingHelpers.RelativeError(TrainingHelpers.Tensor(network, "bn1.running_mean"), mean) <= TorchTolerance,
                        $"{name}: running_mean [{string.Join(", ", TrainingHelpers.Tensor(network, "bn1.running_mean").ToArray())}], expected [{string.Join(", ", mean)}]");
                    Assert.True(TrainingHelpers.RelativeError(TrainingHelpers.Tensor(network, "bn1.running_var"), variance) <= TorchTolerance,
                        $"{name}: running_var [{string.Join(", ", TrainingHelpers.Tensor(network, "bn1.running_var").ToArray())}], expected [{string.Join(", ", variance)}]");
                    Assert.Equal(2, TrainingHelpers.Counter(network, "bn1.num_batches_tracked"));
                });
        }

        [Fact]
        public void BatchNorm2dRunningStatisticsMatchPyTorch()
        {
            var network = new TorchBatchNorm2d(0);
            Assert.Equal(
                "conv1.weight[3,2,3,3] bn1.weight[3] bn1.bias[3] bn1.running_mean[3] bn1.running_var[3] bn1.num_batches_tracked[] dense1.weight[2,48] dense1.bias[2]",
                string.Join(" ", network.Tensors.Select(t => $"{t.Name}[{string.Join(",", t.Shape)}]")));
            // Batch norm's γ = 1 and β = 0, as PyTorch initialises them.
            Assert.Equal(new float[] { 1f, 1f, 1f }, TrainingHelpers.Tensor(network, "bn1.weight").ToArray());
            Assert.Equal(new float[] { 0f, 0f, 0f }, TrainingHelpers.Tensor(network, "bn1.bias").ToArray());
            float[] initial = Concat(F(54, 7, 2, 13, 16), [1f, 1f, 1f], [0f, 0f, 0f], F(96, 5, 3, 11, 32), F(2, 1, 0, 3, 8));
            initial.CopyTo(network.Parameters);
            float[] input = F(96, 11, 5, 17, 8);
            int[] labels = [1, 0, 1];
            var sgd = Optimizer.Sgd(0.1f, momentum: 0.9f);

            float loss1 = network.TrainStep(input, labels, sgd);
            Assert.Equal(1, TrainingHelpers.Counter(network, "bn1.num_batches_tracked"));
            float loss2 = network.TrainStep(input, labels, sgd);

            TrainingHelpers.AssertRelativelyClose(0.686395916, loss1, TorchTolerance, "step 1 loss");
            TrainingHelpers.AssertRelativelyClose(0.448099908, loss2, TorchTolerance, "step 2 loss");
            float[] mean = [-0.00399432194f, 0.00606090119f, -0.00201178989f];
            float[] variance = [0.851582362f, 0.857488475f, 0.838445412f];
            // The means are small; compare them on the scale of the variances (absolute 1e-5 · ~1).
            Assert.True(TrainingHelpers.RelativeError(TrainingHelpers.Tensor(network, "bn1.running_mean"), mean, floor: 0.1) <= TorchTolerance,
                $"running_mean [{string.Join(", ", TrainingHelpers.Tensor(network, "bn1.running_mean").ToArray())}], expected [{string.Join(", ", mean)}]");
            Assert.True(TrainingHelpers.RelativeError(TrainingHelpers.Tensor(network, "bn1.running_var"), variance) <= TorchTolerance,
                $"running_var [{string.Join(", ", TrainingHelpers.Tensor(network, "bn1.running_var").ToArray())}], expected [{string.Join(", ", variance)}]");
            Assert.Equal(2, TrainingHelpers.Counter(network, "bn1.num_batches_tracked"));
            float[] parameters = [-0.24972262f, 0.223521669f, -0.198112555f, 0.281177778f, -0.180515252f, 0.343603148f, -0.106657848f, 0.402590278f, 0.0118699093f, -0.366675064f, 0.0439181525f, -0.291382857f, 0.0995481453f, -0.21679583f, 0.154552073f, -0.166191902f, 0.205378116f, -0.0916721994f, 0.348394417f, -0.0675629171f, 0.368040898f, -0.0131542712f, -0.391606611f, 0.050600101f, -0.339824566f, 0.190917434f, -0.269049724f, 0.174997472f, -0.160086774f, 0.248018367f, -0.121942404f, 0.316662833f, -0.0853586746f, 0.360220253f, -0.0150600098f, -0.305364558f, 0.0621705715f, -0.322611611f, 0.12473856f, -0.275217389f, 0.217708574f, -0.17207266f, 0.268424121f, -0.121224932f, 0.300422201f, -0.0494450977f, 0.375090833f, 0.00554760665f, -0.365619483f, 0.0459074814f, -0.313340593f, 0.0885461257f, -0.235586287f, 0.189210683f, 1.01279391f, 0.994209285f, 1.00733404f, 0.0414869855f, 0.00745659956f, 0.00391550268f, -0.0697560408f, 0.0505091269f, -0.114201747f, 0.0503336268f, -0.178131501f, 0.00532113068f, -0.141822581f, -0.0727756588f, 0.153052597f, -0.0667420746f, 0.0869087965f, -0.0341639161f, 0.0744797905f, -0.1339963f, 0.102369387f, -0.173631313f, 0.0600028117f, -0.179122459f, 0.00175353926f, 0.117936574f, -0.0456888294f, 0.0584058447f, -0.127143388f, 0.102693795f, -0.139172339f, -0.0341259972f, -0.0850051469f, 0.0427793156f, -0.199828714f, 0.0231037401f, 0.134881396f, -0.0631658939f, 0.096032037f, -0.0675213267f, 0.0904835819f, -0.154789088f, 0.123425981f, -0.125f, -0.0300861811f, -0.195551822f, 0.0406628546f, 0.15625f, -0.0312760017f, 0.0810139806f, -0.0576989207f, 0.0412310816f, -0.132479242f, 0.113550372f, -0.117743959f, 0.0744908731f, -0.135798253f, 0.0121663732f, 0.209381501f, -0.00532113068f, 0.110572581f, 0.0102756588f, 0.0969474034f, -0.0582579254f, 0.100591204f, -0.153336084f, 0.0505202095f, -0.1160037f, -0.039869387f, 0.204881313f, -0.0600028117f, 0.147872459f, -0.0642535393f, 0.132063426f, -0.0793111706f, 0.129094155f, -0.0603566123f, 0.0223062046f, -0.110827661f, 0.0966259972f, 0.116255147f, -0.0427793156f, 0.168578714f, -0.0856037401f, 0.115118604f, -0.0618341061f, 0.091467963f, -0.119978673f, 0.0345164181f, -0.0952109119f, -0.0609259806f, 0.15625f, 0.0300861811f, 0.164301822f, -0.103162855f, 0.09375f, -0.0937239983f, 0.106486019f, -0.129801079f, 0.0837689184f, -0.117520758f, -0.0510503725f, -0.172179078f, 0.0471790775f];
            TrainingHelpers.AssertParametersClose(network, network.Parameters, parameters, TorchTolerance, "parameters after 2 SGD steps");

            // Inference afterwards normalises with the running statistics: the naive reference (harness), given the
            // trained parameters and the buffers, computes the same outputs.
            var decl = new NetDecl(new Shape(2, 4, 4), new[]
            {
                LayerSpec.Conv(3, 3, padding: 1, bias: false), LayerSpec.Of(LayerKind.BatchNorm), LayerSpec.Of(LayerKind.ReLU),
                LayerSpec.Of(LayerKind.Flatten), LayerSpec.Dense(2),
            });
            var output = new float[3 * 2];
            network.Forward(input, output);
            double[] ToDouble(ReadOnlySpan<float> values) => values.ToArray().Select(v => (double)v).ToArray();
            double[] reference = new NaiveNetwork(decl).Forward(ToDouble(network.Parameters), ToDouble(network.Buffers), ToDouble(input));
            double inferenceError = Parity.Error(output, reference, 1.0, out _);
            Assert.True(inferenceError <= Parity.ForwardTolerance, $"inference after training differs from the reference by {inferenceError:g3}");
        }

        // ---- 6. The benchmark networks train --------------------------------------------------------

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

        // ---- 7. Misuse of the training API ---------------------------------------------------------

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

        // ---- 8. Divergence: a NaN or infinite loss or gradient is reported and not applied --------------
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
            var (images, labels) = QuadrantImages(32, seed: 13);
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
            var (images, brightness) = BrightnessImages(16, seed: 23);
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

    /// <summary>
    /// Determinism across instances and thread counts, and the absence of allocation in steady-state training and
    /// inference. Not run in parallel with other tests: the process-wide allocation counter must see only this
    /// test's threads, and <see cref="Kernels.MaxVectorBits"/> must not change during a comparison.
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

        // ---- 4. No allocation in steady state -------------------------------------------------------

        private const int Calls = 100;

        /// <summary>
        /// Up to three rounds of a measurement, the first that passes: an allocation in steady state happens on
        /// every round, while the runtime's own one-off work (a tier-up of a method under load, a pool refill after
        /// a collection) lands in one round only.
        /// </summary>
        private static T Settled<T>(Func<T> measure, Func<T, bool> passes)
        {
            T result = measure();
            for (int round = 1; round < 3 && !passes(result); round++) result = measure();
            return result;
        }

        private static long ThreadAllocation(Action action)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < Calls; i++) action();
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }

        /// <summary>
        /// Reads <see cref="GC.GetAllocatedBytesForCurrentThread"/> on the calling thread and on every thread of the
        /// worker pool that generated networks run their chunks on: it runs <see cref="WorkerPool.Concurrency"/> chunks
        /// through the pool, each waiting until all have started, so that each thread takes exactly one.
        /// Allocation-free itself.
        /// </summary>
        private sealed class PoolThreadAllocations : IParallelWork
        {
            public readonly int Threads = WorkerPool.Concurrency;
            private readonly long[] _bytes;
            private readonly int[] _ids;
            private int _started;
            private bool _timedOut;

            public PoolThreadAllocations() { _bytes = new long[Threads]; _ids = new int[Threads]; }

            public void Execute(int chunk)
            {
                _bytes[chunk] = GC.GetAllocatedBytesForCurrentThread();
                _ids[chunk] = Environment.CurrentManagedThreadId;
                Interlocked.Increment(ref _started);
                long start = Stopwatch.GetTimestamp();
                while (Volatile.Read(ref _started) < Threads)
                {
                    if (Stopwatch.GetElapsedTime(start).TotalSeconds > 5) { _timedOut = true; return; }
                    Thread.SpinWait(20);
                }
            }

            /// <summary>Copies each thread's count and id into the arrays; false when not every thread took part.</summary>
            public bool Read(long[] bytes, int[] ids)
            {
                _started = 0;
                _timedOut = false;
                WorkerPool.Run(this, Threads);
                _bytes.CopyTo(bytes, 0);
                _ids.CopyTo(ids, 0);
                return !_timedOut;
            }
        }

        /// <summary>Bytes allocated by the calling thread and the worker pool's threads over <see cref="Calls"/> calls;
        /// null when the pool's threads could not be probed.</summary>
        private static long? PoolAllocation(PoolThreadAllocations probe, Action action)
        {
            int n = probe.Threads;
            long[] before = new long[n], after = new long[n];
            int[] idsBefore = new int[n], idsAfter = new int[n];
            bool ok = probe.Read(before, idsBefore);
            for (int i = 0; i < Calls; i++) action();
            ok &= probe.Read(after, idsAfter);
            if (!ok || idsBefore.Distinct().Count() != n || !idsBefore.OrderBy(i => i).SequenceEqual(idsAfter.OrderBy(i => i))) return null;
            long total = 0;
            for (int k = 0; k < n; k++) total += after[Array.IndexOf(idsAfter, idsBefore[k])] - before[k];
            return total;
        }

        /// <summary>Process-wide bytes (<see cref="GC.GetTotalAllocatedBytes"/>, precise) over <see cref="Calls"/> calls,
        /// and over an idle wait as long right after. The test host allocates a little in the background (about 168
        /// bytes every 100 ms seen here), so the calls are compared with that; the best of three attempts.</summary>
        private static (long Calls, long Idle) ProcessAllocation(Action action)
        {
            (long Calls, long Idle) best = (long.MaxValue, 0);
            for (int attempt = 0; attempt < 3; attempt++)
            {
                long start = Stopwatch.GetTimestamp();
                long before = GC.GetTotalAllocatedBytes(precise: true);
                for (int i = 0; i < Calls; i++) action();
                long calls = GC.GetTotalAllocatedBytes(precise: true) - before;
                TimeSpan elapsed = Stopwatch.GetElapsedTime(start);
                long idleStart = Stopwatch.GetTimestamp();
                long idleBefore = GC.GetTotalAllocatedBytes(precise: true);
                while (Stopwatch.GetElapsedTime(idleStart) < elapsed) Thread.SpinWait(100);
                long idle = GC.GetTotalAllocatedBytes(precise: true) - idleBefore;
                if (calls - idle < best.Calls - best.Idle) best = (calls, idle);
                if (calls <= idle) break;
            }
            return best;
        }

        [Fact]
        public void SteadyStateTrainingAndInferenceDoNotAllocate()
        {
            const int Batch = 16;
            var rng = new Random(70);
            float[] input = TrainingHelpers.Uniform(rng, Batch * SmallKeras.InputSize);
            int[] labels = TrainingHelpers.Labels(rng, Batch, 10);
            float[] output = new float[Batch * SmallKeras.OutputSize];
            var network = new SmallKeras(2) { MaxDegreeOfParallelism = 1 };
            INetwork asInterface = network;
            var adam = Optimizer.Adam(1e-4f);

            var mse = new QuadrantBrightnessNet(2) { MaxDegreeOfParallelism = 1 };
            INetwork mseInterface = mse;
            float[] mseInput = TrainingHelpers.Uniform(rng, Batch * 144);
            float[] mseTargets = TrainingHelpers.Uniform(rng, Batch * 4);
            float[] mseOutput = new float[Batch * 4];
            var mseSgd = Optimizer.Sgd(1e-3f, momentum: 0.9f);

            // Every delegate is created before measuring.
            var calls = new (string Name, Action Call)[]
            {
                ("ComputeGradients (labels)", () => network.ComputeGradients(input, labels)),
                ("Optimizer.Step (Adam)", () => adam.Step(network.Parameters, network.Gradients)),
                ("TrainStep (generated)", () => network.TrainStep(input, labels, adam)),
                ("TrainStep (NetworkTraining, via INetwork)", () => asInterface.TrainStep(input, labels, adam)),
                ("Forward", () => network.Forward(input, output)),
                ("TrainStep (MSE, SGD with momentum)", () => mse.TrainStep(mseInput, mseTargets, mseSgd)),
                ("TrainStep (MSE, NetworkTraining, via INetwork)", () => mseInterface.TrainStep(mseInput, mseTargets, mseSgd)),
                ("Forward (MSE network)", () => mse.Forward(mseInput, mseOutput)),
            };
            foreach (var (_, call) in calls) for (int i = 0; i < 3; i++) call(); // warm-up: workspaces, optimizer state, JIT

            var thisThread = calls.Select(c => (c.Name, Bytes: Settled(() => ThreadAllocation(c.Call), b => b == 0))).ToList();
            Assert.True(thisThread.All(c => c.Bytes == 0),
                $"bytes allocated on the calling thread over {Calls} calls (MaxDegreeOfParallelism = 1): " +
                string.Join("; ", thisThread.Select(c => $"{c.Name}: {c.Bytes}")));

            // Two threads: the worker pool's threads included.
            network.MaxDegreeOfParallelism = 2;
            mse.MaxDegreeOfParallelism = 2;
            foreach (var (_, call) in calls) for (int i = 0; i < 3; i++) call(); // second chunk's workspace and gradients
            var probe = new PoolThreadAllocations();
            var pool = calls.Select(c => (c.Name, Bytes: Settled(() => PoolAllocation(probe, c.Call), b => b == 0))).ToList();
            Assert.True(pool.All(c => c.Bytes is not null), "the worker pool's threads could not be probed (is the pool busy?)");
            Assert.True(pool.All(c => c.Bytes == 0),
                $"bytes allocated by the calling thread and the {probe.Threads - 1} worker pool thread(s) over {Calls} calls " +
                $"(MaxDegreeOfParallelism = 2): " + string.Join("; ", pool.Select(c => $"{c.Name}: {c.Bytes}")));

            // Process-wide (any other thread the library might use), against the host's background allocation.
            const long Slack = 512;
            var process = calls.Select(c => (c.Name, Bytes: Settled(() => ProcessAllocation(c.Call), b => b.Calls <= b.Idle + Slack))).ToList();
            Assert.True(process.All(c => c.Bytes.Calls <= c.Bytes.Idle + Slack),
                $"bytes allocated in the process over {Calls} calls (MaxDegreeOfParallelism = 2, {Environment.ProcessorCount} cores), " +
                "against an idle wait as long: " + string.Join("; ", process.Select(c => $"{c.Name}: {c.Bytes.Calls} (idle {c.Bytes.Idle})")));
        }
    }

    [CollectionDefinition(nameof(TrainingSerialCollection), DisableParallelization = true)]
    public class TrainingSerialCollection { }
}

