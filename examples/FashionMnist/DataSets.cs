using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Unrolled;
using Unrolled.Data;

namespace FashionMnist;

/// <summary>Images of one shape (channels × height × width floats each, in C, H, W order) with their labels.</summary>
public sealed class ImageSet
{
    public ImageSet(float[] images, int[] labels, int channels, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (images.Length != (long)labels.Length * channels * height * width)
            throw new ArgumentException($"{images.Length} floats are not {labels.Length} images of {channels}×{height}×{width}.", nameof(images));
        Images = images;
        Labels = labels;
        Channels = channels;
        Height = height;
        Width = width;
    }

    public float[] Images { get; }
    public int[] Labels { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int Count => Labels.Length;
    public int SampleSize => Channels * Height * Width;

    public ReadOnlySpan<float> Image(int index) => Images.AsSpan(checked(index * SampleSize), SampleSize);

    /// <summary>The first <paramref name="limit"/> images (this set when it has no more).</summary>
    public ImageSet First(int limit) =>
        limit >= Count ? this : new ImageSet(Images.AsSpan(0, limit * SampleSize).ToArray(), Labels.AsSpan(0, limit).ToArray(), Channels, Height, Width);
}

/// <summary>A training and a test set read from a folder, with the class names and how to turn a sample back into a picture.</summary>
public sealed class DataSet
{
    public required string Format { get; init; }
    public required string Directory { get; init; }
    public required ImageSet Train { get; init; }
    public required ImageSet Test { get; init; }
    public required IReadOnlyList<string> ClassNames { get; init; }

    /// <summary>Per-channel mean and standard deviation the samples were normalised with (null: the values are in [0, 1]).</summary>
    public float[]? Mean { get; init; }
    public float[]? Std { get; init; }

    public int Channels => Train.Channels;
    public int Height => Train.Height;
    public int Width => Train.Width;
    public string Shape => Models.Shape(Channels, Height, Width);

    public string ClassName(int label) =>
        (uint)label < (uint)ClassNames.Count ? ClassNames[label] : "class " + label.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Channel c of a sample's value back in [0, 1] (undoing the normalisation), for pictures.</summary>
    public float Display(float value, int channel)
    {
        if (Mean is not null && Std is not null) value = value * Std[channel] + Mean[channel];
        return float.IsFinite(value) ? Math.Clamp(value, 0, 1) : 0;
    }

    public DataSet WithLimits(int trainLimit, int testLimit) => new()
    {
        Format = Format, Directory = Directory, ClassNames = ClassNames, Mean = Mean, Std = Std,
        Train = Train.First(trainLimit), Test = Test.First(testLimit),
    };
}

/// <summary>Recognises a data folder from its contents and reads it.</summary>
public static class DataSets
{
    private static readonly string[] IdxNames = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

    /// <summary>One IDX pair, prefix-images-idx3-ubyte and prefix-labels-idx1-ubyte (each .gz or not), as a 1-channel set.</summary>
    private static ImageSet ReadIdx(string directory, string prefix)
    {
        string images = FindIdx(directory, $"{prefix}-images-idx3-ubyte"), labels = FindIdx(directory, $"{prefix}-labels-idx1-ubyte");
        LabeledImages set = LabeledImages.Read(images, labels);
        for (int i = 0; i < set.Labels.Length; i++)
        {
            if (set.Labels[i] < 0)
                throw new InvalidDataException($"'{Path.GetFileName(labels)}': label {i} is {set.Labels[i]}, not a class.");
        }
        return new ImageSet(set.Images, set.Labels, 1, set.Rows, set.Cols);
    }

    private static string FindIdx(string directory, string baseName)
    {
        foreach (string name in new[] { baseName + ".gz", baseName })
        {
            string path = Path.Combine(directory, name);
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException($"IDX file missing: neither '{baseName}.gz' nor '{baseName}' is in '{directory}'.", Path.Combine(directory, baseName + ".gz"));
    }

    /// <summary>What the folder holds: "idx", "cifar10", "image-folder", or null when none of them.</summary>
    public static string? Recognise(string directory)
    {
        if (IdxNames.Any(n => File.Exists(Path.Combine(directory, n)) || File.Exists(Path.Combine(directory, n + ".gz"))))
            return "idx";
        if (Cifar10.TrainFiles.Append(Cifar10.TestFile).Any(n => File.Exists(Path.Combine(directory, n))))
            return "cifar10";
        if (ImageFolders.Looks(directory))
            return "image-folder";
        return null;
    }

    /// <summary>
    /// Reads <paramref name="directory"/>: an IDX folder (Fashion-MNIST's four files, gzip'ed or not), a CIFAR-10
    /// binary folder (data_batch_1.bin … data_batch_5.bin and test_batch.bin; also its cifar-10-batches-bin
    /// subfolder) or an image-folder tree. Throws <see cref="InvalidDataException"/> when it is none of them.
    /// <paramref name="imageShape"/> gives, for the channel count of an image-folder tree's images, the input they are resized to.
    /// </summary>
    public static DataSet Load(string directory, Func<int, (int Channels, int Height, int Width)> imageShape)
    {
        if (!System.IO.Directory.Exists(directory))
            throw new DirectoryNotFoundException($"The data folder '{directory}' does not exist.");
        string? format = Recognise(directory);
        if (format is null)
        {
            string nested = Path.Combine(directory, "cifar-10-batches-bin");
            if (System.IO.Directory.Exists(nested) && Recognise(nested) == "cifar10")
                return Load(nested, imageShape);
        }

        switch (format)
        {
            case "idx":
            {
                // Fashion-MNIST's (and MNIST's) file names; images of any size, so that the model's variants decide.
                ImageSet train = ReadIdx(directory, "train"), test = ReadIdx(directory, "t10k");
                if (train.Height != test.Height || train.Width != test.Width)
                    throw new InvalidDataException($"'{directory}': the training images are {train.Height}×{train.Width} but the test images {test.Height}×{test.Width}.");
                int classes = Math.Max(train.Labels.Max(), test.Labels.Max()) + 1;
                return new DataSet
                {
                    Format = "IDX", Directory = directory, Train = train, Test = test,
                    ClassNames = classes <= Unrolled.FashionMnist.ClassNames.Count
                        ? Unrolled.FashionMnist.ClassNames
                        : Enumerable.Range(0, classes).Select(c => c.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
                };
            }
            case "cifar10":
            {
                foreach (string name in Cifar10.TrainFiles.Append(Cifar10.TestFile))
                {
                    if (!File.Exists(Path.Combine(directory, name)))
                        throw new FileNotFoundException($"CIFAR-10 file missing: '{name}' is not in '{directory}' (a CIFAR-10 folder holds data_batch_1.bin … data_batch_5.bin and test_batch.bin).", Path.Combine(directory, name));
                }
                var (train, test) = Cifar10.Load(directory, normalize: true);
                return new DataSet
                {
                    Format = "CIFAR-10 binary", Directory = directory, ClassNames = Cifar10.ClassNames,
                    Mean = Cifar10.TrainMean, Std = Cifar10.TrainStd,
                    Train = new ImageSet(train.Images, train.Labels, Cifar10.Channels, Cifar10.Height, Cifar10.Width),
                    Test = new ImageSet(test.Images, test.Labels, Cifar10.Channels, Cifar10.Height, Cifar10.Width),
                };
            }
            case "image-folder":
                return ImageFolders.Load(directory, imageShape);
            default:
                throw new InvalidDataException(
                    $"'{directory}' is not a data folder this example reads. Expected one of: the IDX files of Fashion-MNIST " +
                    "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each .gz or not); " +
                    "CIFAR-10's binary version (data_batch_1.bin … data_batch_5.bin, test_batch.bin); " +
                    ImageFolders.Expected + ".");
        }
    }
}
