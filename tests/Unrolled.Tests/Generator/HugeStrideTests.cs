using System;
using System.Collections.Generic;
using System.Linq;
using Unrolled.Tests.Harness;
using Unrolled.Tests.Reference;
using Xunit;

namespace Unrolled.Tests.Generator;

/// <summary>
/// Strides longer than the padded input are legal (PyTorch: one output row or column, reading the first window).
/// The convolution's stride-phase layout must not grow with them (it used to take stride × rows × pitch floats per
/// channel, and overflowed from about 2^31 / (16·rows)); inference and gradients must match the reference.
/// </summary>
public class HugeStrideTests
{
    private const int Max = int.MaxValue;

    private static readonly NetDecl[] Decls =
    {
        // The fuzzer's find: a 1×1 input, a ReLU first (so the convolution computes an input gradient too).
        new(new Shape(1, 1, 1), Loss.MeanSquaredError, new[] { LayerSpec.Of(LayerKind.ReLU), LayerSpec.Conv(1, 1, stride: Max) }),
        new(new Shape(2, 8, 8), Loss.MeanSquaredError, new[] { LayerSpec.Of(LayerKind.ReLU), LayerSpec.Conv(3, 3, stride: Max, padding: 1) }),
        new(new Shape(2, 9, 7), new[] { LayerSpec.Conv(2, 2), LayerSpec.Conv(3, (2, 3), stride: 100_000), LayerSpec.Dense(2) }),
        // Longer than the height but not the width, and the other way round: one axis keeps its stride.
        new(new Shape(1, 6, 40), Loss.MeanSquaredError, new[] { LayerSpec.Of(LayerKind.Tanh), LayerSpec.Conv(2, 3, stride: 20) }),
        new(new Shape(1, 40, 6), Loss.MeanSquaredError, new[] { LayerSpec.Of(LayerKind.Tanh), LayerSpec.Conv(2, 3, stride: 20) }),
        new(new Shape(3, 5, 5), Loss.MeanSquaredError, new[] { LayerSpec.Of(LayerKind.Sigmoid), LayerSpec.Conv(2, 2, stride: 100_000, padding: Padding.Same) }),
        new(new Shape(2, 5, 6), Loss.MeanSquaredError, new[] { LayerSpec.Of(LayerKind.ReLU), LayerSpec.MaxPool(2, stride: Max) }),
        new(new Shape(2, 5, 6), Loss.MeanSquaredError, new[] { LayerSpec.Of(LayerKind.ReLU), LayerSpec.AvgPool(3, stride: Max, padding: 1) }),
    };

    [Fact]
    public void Strides_beyond_the_input_match_the_reference()
    {
        var compiled = CompiledBatch.Compile(Decls);
        var failures = compiled.CheckAll((network, reference, i) =>
            new[] { 1, 3 }.Select(batch => Parity.ForwardMismatch(network, reference, batch, seed: 10 * i + batch)
                                           ?? Parity.GradientMismatch(network, reference, batch, seed: 10 * i + batch + 5))
                .FirstOrDefault(p => p is not null));
        Assert.True(failures.Count == 0, CompiledBatch.Report("huge-stride networks", Decls.Length, failures));
    }

    /// <summary>A window of 46341 × 46341 cells (more than int.MaxValue) on a 1×1 input padded by 23170: PyTorch's
    /// count_include_pad divides by every cell of the window, and the divisor must not overflow.</summary>
    [Fact]
    public void An_average_over_more_than_int_MaxValue_cells_divides_by_all_of_them()
    {
        var decl = new NetDecl(new Shape(1, 1, 1), Loss.MeanSquaredError, new[] { LayerSpec.AvgPool(46341, padding: 23170) });
        INetwork network = CompiledBatch.Compile(new[] { decl }).Create(0);
        var output = new float[1];
        network.Forward(new[] { 3f }, output);
        double cells = 46341.0 * 46341.0;
        Assert.Equal(3 / cells, output[0], 3 / cells * 1e-6);
    }
}
