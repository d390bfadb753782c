using System;
using System.Collections.Generic;
using System.Linq;
using Unrolled.Tests.Generator;
using Unrolled.Tests.Harness;
using Unrolled.Tests.Reference;
using Xunit;

namespace Unrolled.Tests
{
    /// <summary>
    /// Convolutions the generator computes with another strategy than the direct kernel. A convolution whose kernel
    /// covers its whole unpadded input (output 1×1, e.g. the classic LeNet's conv3) runs on the Dense kernels: these
    /// declarations put one first, in the middle, last, without bias, with every activation, before batch norm, a
    /// pool or Flatten, and compare forward and gradients with the reference at every vector width.
    /// </summary>
    [Collection(nameof(VectorWidthCollection))]
    public class StrategyTests
    {
        private static readonly Activation R = Activation.ReLU, T = Activation.Tanh, S = Activation.Sigmoid, Leaky = Activation.LeakyReLU;

        public static readonly IReadOnlyList<NetDecl> DenseOverPatch = new[]
        {
            // The classic LeNet (LeCun 1998): tanh, average pools, conv3 5×5 over a 16×5×5 input.
            new NetDecl(new Shape(1, 32, 32), new[] { LayerSpec.Conv(6, 5, activation: T), LayerSpec.AvgPool(2), LayerSpec.Conv(16, 5, activation: T),
                LayerSpec.AvgPool(2), LayerSpec.Conv(120, 5, activation: T), LayerSpec.Dense(84, activation: T), LayerSpec.Dense(10) }),
            // First layer, no bias, then batch norm over the 1×1 image and a dense head.
            new NetDecl(new Shape(3, 6, 7), new[] { LayerSpec.Conv(9, (6, 7), bias: false, activation: R), LayerSpec.Of(LayerKind.BatchNorm), LayerSpec.Dense(4) }),
            // Sigmoid and LeakyReLU; a stride that does not matter for a 1×1 output; Flatten after it.
            new NetDecl(new Shape(2, 9, 9), new[] { LayerSpec.Conv(5, 3, activation: R), LayerSpec.Conv(7, 7, stride: 2, activation: S), LayerSpec.Of(LayerKind.Flatten), LayerSpec.Dense(3) }),
            new NetDecl(new Shape(4, 3, 3), new[] { LayerSpec.Conv(33, 3, activation: Leaky), LayerSpec.Conv(6, 1), LayerSpec.Dense(3) }),
            // Last layer, mean squared error: its output is the network's.
            new NetDecl(new Shape(2, 12, 12), Loss.MeanSquaredError, new[] { LayerSpec.Conv(4, 3, activation: R), LayerSpec.MaxPool(2), LayerSpec.Conv(17, 5) }),
        };

        private static readonly Lazy<CompiledBatch> Compiled = new(() => CompiledBatch.Compile(DenseOverPatch));

        private static readonly int Same = Unrolled.Padding.Same;

        /// <summary>Pools other than 2×2/2 (the separable runtime kernels, forward and average backward) and
        /// LocalResponseNorm (vectorised over each channel's values), in the shapes users write: overlapping 3×3/2,
        /// padded, Same, average with and without padding cells in the divisor, rows longer and shorter than a
        /// vector, LRN of odd and even size, β other than 0.75, large α.</summary>
        public static readonly IReadOnlyList<NetDecl> PoolsAndLrn = new[]
        {
            // AlexNet-style: LRN(5), overlapping 3×3/2 max pools.
            new NetDecl(new Shape(3, 35, 35), new[] { LayerSpec.Conv(8, 5, stride: 2, activation: R), LayerSpec.Lrn(5), LayerSpec.MaxPool(3, 2),
                LayerSpec.Conv(12, 3, padding: 1, activation: R), LayerSpec.Lrn(4, alpha: 0.5, beta: 0.6, k: 2), LayerSpec.MaxPool(3, 2), LayerSpec.Dense(5) }),
            // A 3×3/2 max pool with padding 1 after a stem, then average pools: 3×3/1 padding 1 (zeros counted), Same (not counted).
            new NetDecl(new Shape(2, 21, 40), new[] { LayerSpec.Conv(6, 3, activation: R), LayerSpec.MaxPool(3, 2, 1), LayerSpec.AvgPool(3, 1, 1),
                LayerSpec.AvgPool(3, 2, Same), LayerSpec.Dense(4) }),
            // Average 2×2/2 (its backward is the separable one) and a max pool with Same padding and stride 2.
            new NetDecl(new Shape(3, 18, 18), new[] { LayerSpec.Conv(5, 3, activation: T), LayerSpec.AvgPool(2), LayerSpec.MaxPool(3, 2, Same), LayerSpec.Dense(3) }),
            // Large windows over short rows, and the pool as the last layer.
            new NetDecl(new Shape(4, 9, 7), Loss.MeanSquaredError, new[] { LayerSpec.Lrn(3, alpha: 1.0, beta: 0.75), LayerSpec.MaxPool(5, 1, 2), LayerSpec.AvgPool(4, 3) }),
        };

        /// <summary>Convolutions with at most 8 output columns, whose forward pass multiplies gathered patches by the
        /// weights on the Dense kernels: padded and strided (patches reading padding on every side), a filter count
        /// that is not a multiple of the units tile, no bias, Tanh and LeakyReLU, one output column, the first layer,
        /// a layer followed by a 2×2/2 max pool (which a PatchGemm layer does not fuse), and the last layer.</summary>
        public static readonly IReadOnlyList<NetDecl> PatchGemm = new[]
        {
            new NetDecl(new Shape(3, 13, 13), new[] { LayerSpec.Conv(10, 3, stride: 2, padding: 1, activation: R), LayerSpec.Conv(19, 3, padding: 1, bias: false, activation: T), LayerSpec.Dense(5) }),
            new NetDecl(new Shape(8, 6, 5), new[] { LayerSpec.Conv(9, 3, padding: 2, activation: Leaky), LayerSpec.MaxPool(2), LayerSpec.Conv(12, (2, 3), activation: S), LayerSpec.Dense(4) }),
            new NetDecl(new Shape(16, 9, 1), new[] { LayerSpec.Conv(8, (3, 1), padding: 1, activation: R), LayerSpec.Dense(3) }),
            new NetDecl(new Shape(4, 8, 8), Loss.MeanSquaredError, new[] { LayerSpec.Conv(16, 3, padding: 1, activation: R), LayerSpec.MaxPool(2), LayerSpec.Conv(8, 3, padding: 1) }),
        };

        private static readonly Lazy<CompiledBatch> CompiledPatches = new(() => CompiledBatch.Compile(PatchGemm));

        [Fact]
        public void ConvolutionsWithFewOutputColumnsMultiplyPatchesAndSaySo()
        {
            GeneratorOutput run = GeneratorHarness.Run(CompiledBatch.Source(PatchGemm));
            string all = string.Concat(run.GeneratedSources.Select(s => s.Text));
            Assert.Equal(6, all.Split("strategy: patches × weights (").Length - 1);
            Assert.Contains("// conv2: strategy: patches × weights (7 output column(s) would fill 7 of 16 lanes directly; each of the 49 pixels' 10×3×3 patch is a row for the Dense kernels, 19 filters; backward over 64 samples at a time, every pixel a row: dW += dZᵀ·A, dA = dZ·W, then col2im)", all);
        }

        [Theory]
        [InlineData(512)]
        [InlineData(256)]
        [InlineData(128)]
        public void PatchGemmMatchesTheReference(int bits)
        {
            using var width = VectorWidth.Limit(bits);
            CheckAgainstReference(CompiledPatches.Value, PatchGemm.Count, "patch-GEMM networks", bits, new[] { 1, 2, 5 }, forwardSeed: 10, gradientBatch: 3, gradientSeed: 80);
        }

        private static readonly Lazy<CompiledBatch> CompiledPools = new(() => CompiledBatch.Compile(PoolsAndLrn));

        [Theory]
        [InlineData(512)]
        [InlineData(256)]
        [InlineData(128)]
        public void PoolsAndLrnMatchTheReference(int bits)
        {
            using var width = VectorWidth.Limit(bits);
            CheckAgainstReference(CompiledPools.Value, PoolsAndLrn.Count, "pool and LRN networks", bits, new[] { 1, 3 }, forwardSeed: 20, gradientBatch: 4, gradientSeed: 60);
        }

        /// <summary>Forward at each batch size and gradients of every network against the reference, at the current width.</summary>
        private static void CheckAgainstReference(CompiledBatch compiled, int count, string what, int bits, int[] batches, int forwardSeed, int gradientBatch, int gradientSeed)
        {
            var failures = compiled.CheckAll((network, reference, i) =>
            {
                var problems = batches
                    .Select(batch => Parity.ForwardMismatch(network, reference, batch, seed: forwardSeed + 10 * i + batch))
                    .Append(Parity.GradientMismatch(network, reference, gradientBatch, seed: gradientSeed + i))
                    .Where(p => p != null).ToList();
                return problems.Count == 0 ? null : string.Join("\n    ", problems);
            });
            Assert.True(failures.Count == 0, CompiledBatch.Report($"{what} at {bits} bits (path {Kernels.ActivePath})", count, failures));
        }

        [Fact]
        public void EveryConvolutionCoveringItsInputRunsOnTheDenseKernelsAndSaysSo()
        {
            GeneratorOutput run = GeneratorHarness.Run(CompiledBatch.Source(DenseOverPatch));
            string all = string.Concat(run.GeneratedSources.Select(s => s.Text));
            // One per declaration: LeNet's conv3, the first layer, the 7×7 over 5×7×7, the 3×3 over 4×3×3 and its 1×1 successor, the last.
            int dense = all.Split("strategy: dense over the patch").Length - 1;
            Assert.Equal(6, dense);
            Assert.Contains("// conv3: strategy: dense over the patch (the 5×5 kernel covers the whole 16×5×5 input, output 1×1: a 120 × 400 matrix–vector product", all);
            Assert.Contains("// conv1: strategy: direct", all);
        }

        [Theory]
        [InlineData(512)]
        [InlineData(256)]
        [InlineData(128)]
        public void ForwardAndGradientsMatchTheReference(int bits)
        {
            using var width = VectorWidth.Limit(bits);
            CheckAgainstReference(Compiled.Value, DenseOverPatch.Count, "dense-over-patch networks", bits, new[] { 1, 2, 7 }, forwardSeed: 70, gradientBatch: 5, gradientSeed: 30);
        }
    }
}
