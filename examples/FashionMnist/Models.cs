using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Unrolled;

namespace FashionMnist;

/// <summary>One generated network class: the input shape it was declared for and how to make one.</summary>
public sealed record ModelVariant(int Channels, int Height, int Width, string ClassName, Func<int, INetwork> Create, string Summary)
{
    public string Shape => Models.Shape(Channels, Height, Width);
}

/// <summary>
/// A --model: its variants (one class per input shape) and the training settings a user gets by naming it
/// alone (each reaches at least 90 % test accuracy on Fashion-MNIST with them; see the README).
/// </summary>
public sealed record ModelInfo(
    string Name,
    string Description,
    IReadOnlyList<ModelVariant> Variants,
    int Epochs,
    int Batch,
    string Optimizer,
    float LearningRate,
    string Schedule,
    bool SaveBest)
{
    /// <summary>The variant for the data's shape; a clear error naming the shapes there are when none fits.</summary>
    public ModelVariant For(int channels, int height, int width)
    {
        foreach (ModelVariant v in Variants)
            if (v.Channels == channels && v.Height == height && v.Width == width) return v;
        throw new ArgumentException(
            $"--model {Name} has no variant for {Models.Shape(channels, height, width)} input; it is declared for " +
            $"{string.Join(" and ", Variants.Select(v => v.Shape))} (a network's input shape is fixed at compile time: " +
            "declare another [Network(channels, height, width)] class in Networks.cs and add it in Models.cs).");
    }
}

public static class Models
{
    public static readonly IReadOnlyList<ModelInfo> All =
    [
        new("lenet5", "LeNet-5 (ReLU, max pooling)",
            [
                new(1, 28, 28, nameof(LeNet5), seed => new LeNet5(seed), LeNet5.Summary),
                new(3, 32, 32, nameof(LeNet5Rgb32), seed => new LeNet5Rgb32(seed), LeNet5Rgb32.Summary),
            ],
            Epochs: 15, Batch: 64, Optimizer: "adamw", LearningRate: 0.003f, Schedule: "cosine", SaveBest: false),
        new("simpleconvnet", "SimpleConvNet of \"Deep Learning from Scratch\"",
            [
                new(1, 28, 28, nameof(SimpleConvNet), seed => new SimpleConvNet(seed), SimpleConvNet.Summary),
                new(3, 32, 32, nameof(SimpleConvNetRgb32), seed => new SimpleConvNetRgb32(seed), SimpleConvNetRgb32.Summary),
            ],
            Epochs: 10, Batch: 100, Optimizer: "adam", LearningRate: 0.001f, Schedule: "cosine", SaveBest: false),
        new("keras-baseline", "the seed's Keras Baseline (Adam, ModelCheckpoint save-best)",
            [
                new(1, 28, 28, nameof(KerasBaseline), seed => new KerasBaseline(seed), KerasBaseline.Summary),
                new(3, 32, 32, nameof(KerasBaselineRgb32), seed => new KerasBaselineRgb32(seed), KerasBaselineRgb32.Summary),
            ],
            Epochs: 12, Batch: 32, Optimizer: "adam", LearningRate: 0.001f, Schedule: "cosine", SaveBest: true),
        new("alexnet", "AlexNet-style (6×6/2 or 8×8/2 stem, LRN, 3×3/2 overlapping pools, dropout before wide dense layers)",
            [
                new(1, 28, 28, nameof(AlexNet), seed => new AlexNet(seed), AlexNet.Summary),
                new(3, 32, 32, nameof(AlexNetRgb32), seed => new AlexNetRgb32(seed), AlexNetRgb32.Summary),
            ],
            Epochs: 6, Batch: 64, Optimizer: "adamw", LearningRate: 0.001f, Schedule: "cosine", SaveBest: false),
        new("fashionnet", "two VGG-style blocks with batch norm, dropout",
            [
                new(1, 28, 28, nameof(FashionNet), seed => new FashionNet(seed), FashionNet.Summary),
                new(3, 32, 32, nameof(FashionNetRgb32), seed => new FashionNetRgb32(seed), FashionNetRgb32.Summary),
            ],
            Epochs: 4, Batch: 64, Optimizer: "adamw", LearningRate: 0.002f, Schedule: "cosine", SaveBest: false),
    ];

    public static IEnumerable<string> Names => All.Select(m => m.Name);

    public static ModelInfo Find(string name) =>
        All.FirstOrDefault(m => m.Name == name)
        ?? throw new ArgumentException($"unknown model '{name}'; choose {string.Join(", ", Names)}.");

    public static string Shape(int channels, int height, int width) =>
        string.Create(CultureInfo.InvariantCulture, $"{channels}×{height}×{width}");
}
