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
            var failures = Compiled.Value.CheckAll((network, reference, i) =>
            {
                var problems = new[] { 1, 2, 7 }
                    .Select(batch => Parity.ForwardMismatch(network, reference, batch, seed: 70 + 10 * i + batch))
                    .Append(Parity.GradientMismatch(network, reference, 5, seed: 30 + i))
                    .Where(p => p != null).ToList();
                return problems.Count == 0 ? null : string.Join("\n    ", problems);
            });
            Assert.True(failures.Count == 0, CompiledBatch.Report($"dense-over-patch networks at {bits} bits (path {Kernels.ActivePath})", DenseOverPatch.Count, failures));
        }
    }
}
