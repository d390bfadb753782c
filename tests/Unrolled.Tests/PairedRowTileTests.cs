using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using Unrolled.Tests.Generator;
using Unrolled.Tests.Harness;
using Unrolled.Tests.Reference;
using Xunit;

namespace Unrolled.Tests
{
    /// <summary>
    /// Convolutions whose output rows are half a vector longer than a whole number of vectors (24 or 40 columns in
    /// 16 lanes, 12 or 20 in 8) share one vector between the ends of two rows and store rows exactly. These
    /// declarations reach those tiles on the 512- and 256-bit paths — pooled and not, filter and row tails, no bias,
    /// LeakyReLU, stride 2, several input channels, the convolution as the last layer — and each is compared with the
    /// reference, forward (inference, where the pool is fused) and backward (training, where the convolution runs
    /// alone), at every vector width; its forward must not write past the caller's output.
    /// </summary>
    [Collection(nameof(VectorWidthCollection))]
    public class PairedRowTileTests
    {
        private static readonly Activation R = Activation.ReLU, Leaky = Activation.LeakyReLU;

        public static readonly IReadOnlyList<NetDecl> Decls = new[]
        {
            // 24 columns, pooled after (SimpleConvNet's first layer, smaller).
            new NetDecl(new Shape(1, 28, 28), new[] { LayerSpec.Conv(8, 5, activation: R), LayerSpec.MaxPool(2), LayerSpec.Dense(6) }),
            // 24 columns, 7 filters (a filter tail), LeakyReLU, three input channels, not pooled.
            new NetDecl(new Shape(3, 12, 28), new[] { LayerSpec.Conv(7, 5, activation: Leaky), LayerSpec.Dense(5) }),
            // One filter: row pairs stack up; 18 rows are 8 pairs and a row tail of one pair.
            new NetDecl(new Shape(1, 22, 28), new[] { LayerSpec.Conv(1, 5, activation: R), LayerSpec.MaxPool(2), LayerSpec.Dense(3) }),
            // 40 columns (two whole vectors and a half), no bias, LeakyReLU, pooled.
            new NetDecl(new Shape(2, 20, 44), new[] { LayerSpec.Conv(5, 5, bias: false, activation: Leaky), LayerSpec.MaxPool(2), LayerSpec.Dense(4) }),
            // Stride 2 onto 24 columns.
            new NetDecl(new Shape(2, 30, 50), new[] { LayerSpec.Conv(4, 3, stride: 2, activation: R), LayerSpec.Dense(4) }),
            // 12 columns (256-bit pairs), 9 filters, pooled; then 20 columns (256-bit pairs), not pooled.
            new NetDecl(new Shape(2, 16, 16), new[] { LayerSpec.Conv(9, 5, activation: R), LayerSpec.MaxPool(2), LayerSpec.Dense(5) }),
            new NetDecl(new Shape(3, 10, 24), new[] { LayerSpec.Conv(6, 5, padding: 0, activation: R), LayerSpec.Dense(4) }),
            // The convolution (alone, or with its pool) as the last layer: its exact-width rows go straight to the caller's output.
            new NetDecl(new Shape(1, 28, 28), Loss.MeanSquaredError, new[] { LayerSpec.Conv(3, 5, activation: R) }),
            new NetDecl(new Shape(1, 28, 28), Loss.MeanSquaredError, new[] { LayerSpec.Conv(2, 5, activation: R), LayerSpec.MaxPool(2) }),
        };

        private static readonly Lazy<CompiledBatch> Compiled = new(() => CompiledBatch.Compile(Decls));

        [Fact]
        public void TheDeclarationsReachPairedTilesOnBothWidePaths()
        {
            GeneratorOutput run = GeneratorHarness.Run(CompiledBatch.Source(Decls));
            string all = string.Concat(run.GeneratedSources.Select(s => s.Text));
            var tiles = Regex.Matches(all, @"(?:private|internal) static void (L0_(?:Pool)?Tile\w+p_(?:512|256))\(").Select(m => m.Groups[1].Value).ToList();
            Assert.Contains(tiles, t => t.StartsWith("L0_PoolTile", StringComparison.Ordinal) && t.EndsWith("p_512", StringComparison.Ordinal));
            Assert.Contains(tiles, t => t.StartsWith("L0_Tile", StringComparison.Ordinal) && t.EndsWith("p_512", StringComparison.Ordinal));
            Assert.Contains(tiles, t => t.StartsWith("L0_PoolTile", StringComparison.Ordinal) && t.EndsWith("p_256", StringComparison.Ordinal));
            Assert.Contains(tiles, t => t.StartsWith("L0_Tile", StringComparison.Ordinal) && t.EndsWith("p_256", StringComparison.Ordinal));
            // A row tail: two tile heights for the one-filter layer.
            Assert.True(Regex.Matches(all, @"(?:private|internal) static void L0_PoolTile1x\d+x1p_512\(").Count >= 2, "no row tail among the paired tiles");
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
                var problems = new[] { 1, 2, 5 }
                    .Select(batch => Parity.ForwardMismatch(network, reference, batch, seed: 40 + 10 * i + batch))
                    .Append(Parity.GradientMismatch(network, reference, 3, seed: 90 + i))
                    .Append(WritesOnlyItsOutput(network, batch: 2))
                    .Where(p => p != null).ToList();
                return problems.Count == 0 ? null : string.Join("\n    ", problems);
            });
            Assert.True(failures.Count == 0, CompiledBatch.Report($"paired-tile networks at {bits} bits (path {Kernels.ActivePath})", Decls.Count, failures));
        }

        /// <summary>Forward into a slice of a larger array: the floats after the slice keep their sentinel.</summary>
        private static string? WritesOnlyItsOutput(INetwork network, int batch)
        {
            var input = new float[batch * network.InputSize];
            var rng = new Random(5);
            for (int i = 0; i < input.Length; i++) input[i] = (float)(rng.NextDouble() * 2 - 1);
            int n = batch * network.OutputSize;
            var output = new float[n + 64];
            output.AsSpan(n).Fill(-12345f);
            network.Forward(input, output.AsSpan(0, n));
            int changed = output.AsSpan(n).ToArray().Count(v => v != -12345f);
            return changed == 0 ? null : $"Forward wrote {changed} float(s) past its output";
        }
    }
}
