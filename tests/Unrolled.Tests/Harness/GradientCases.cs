using System;
using System.Collections.Generic;
using System.Linq;

namespace Unrolled.Tests.Harness;

/// <summary>One small network built around one layer kind, for gradient checks.</summary>
public sealed record GradientCase(LayerKind Kind, Loss Loss, int Variant, NetDecl Decl)
{
    public string Name => $"{Kind}/{Loss}/v{Variant}";
    public override string ToString() => Name;
}

/// <summary>
/// Small random networks that put one layer kind where gradients must flow through it: the layer under test
/// sits between a parametrised layer (so its input gradient reaches trainable weights) and a small dense
/// head (so the loss sees every output). Shapes and options are random per variant but reproducible.
/// </summary>
public static class GradientCases
{
    public const int VariantsPerKind = 4;

    public static IEnumerable<GradientCase> All(bool forGenerated) =>
        from kind in Enum.GetValues<LayerKind>()
        from loss in new[] { Loss.CrossEntropy, Loss.MeanSquaredError }
        from variant in Enumerable.Range(0, VariantsPerKind)
        select Build(kind, loss, variant, forGenerated);

    /// <param name="forGenerated">Dropout gets p = 0 when the case is compared with generated code (whose masks are
    /// internal); for the reference alone it keeps p &gt; 0 and the test supplies masks.</param>
    public static GradientCase Build(LayerKind kind, Loss loss, int variant, bool forGenerated)
    {
        var rng = new Random(1000 * (int)kind + 100 * (int)loss + variant);
        var options = new RandomDeclOptions { MaxFilters = 4, MaxKernel = 4, MaxUnits = 6 };
        var image = new Shape(rng.Next(1, 4), rng.Next(3, 9), rng.Next(3, 9));
        var layers = new List<LayerSpec>();
        Shape input;

        // A 3×3 same-size convolution in front, so the layer's input gradient reaches weights.
        void ConvFront()
        {
            input = image;
            layers.Add(LayerSpec.Conv(rng.Next(2, 4), 3, padding: 1));
        }
        // A dense layer in front, for the vector variants.
        void DenseFront()
        {
            input = Shape.Vector(rng.Next(2, 7));
            layers.Add(LayerSpec.Dense(rng.Next(3, 7)));
        }
        Shape Current() => new NetDecl(input, layers).OutputShape;

        switch (kind)
        {
            case LayerKind.Conv2D:
                input = image;
                layers.Add(NetDecl.RandomLayer(rng, kind, image, options));
                if (variant % 2 == 1) layers.Add(NetDecl.RandomLayer(rng, kind, Current(), options));
                break;
            case LayerKind.Dense:
                // Even variants read an image directly (the implicit flatten), odd ones a vector.
                input = variant % 2 == 0 ? image : Shape.Vector(rng.Next(1, 9));
                layers.Add(NetDecl.RandomLayer(rng, kind, input, options));
                break;
            case LayerKind.BatchNorm:
            case LayerKind.Dropout:
            case LayerKind.ReLU:
            case LayerKind.LeakyReLU:
            case LayerKind.Sigmoid:
            case LayerKind.Tanh:
                // Even variants on an image (BatchNorm2d), odd ones on a vector (BatchNorm1d).
                if (variant % 2 == 0) ConvFront(); else DenseFront();
                var layer = NetDecl.RandomLayer(rng, kind, Current(), options);
                if (kind == LayerKind.Dropout) layer = LayerSpec.Dropout(forGenerated ? 0.0 : 0.3 + 0.1 * variant);
                layers.Add(layer);
                break;
            case LayerKind.Softmax:
                DenseFront();
                layers.Add(LayerSpec.Of(LayerKind.Softmax));
                // Odd variants put the Softmax in the middle, where no loss is fused with it.
                if (variant % 2 == 1) layers.Add(LayerSpec.Dense(rng.Next(2, 5)));
                return new GradientCase(kind, loss, variant, new NetDecl(input, loss, layers));
            default:
                ConvFront();
                layers.Add(NetDecl.RandomLayer(rng, kind, Current(), options));
                break;
        }
        layers.Add(LayerSpec.Dense(rng.Next(2, 5)));
        return new GradientCase(kind, loss, variant, new NetDecl(input, loss, layers));
    }
}
