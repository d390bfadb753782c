using System;
using System.IO;
using System.Linq;
using StbImageSharp;
using Unrolled.Data;

namespace FashionMnist;

/// <summary>
/// Image-folder trees (read by <see cref="ImageFolder"/>): either root/train/&lt;class&gt;/&lt;image&gt; beside
/// root/test/&lt;class&gt;/… (or root/val/…), or a single root/&lt;class&gt;/&lt;image&gt; tree whose last sixth, in an
/// order shuffled with a fixed seed, becomes the test set (Fashion-MNIST's 60,000 : 10,000).
/// </summary>
public static class ImageFolders
{
    public const string Expected = "an image-folder tree (train/<class>/<image> and test/<class>/<image>, or <class>/<image>; .png, .jpg, .jpeg or .bmp)";

    /// <summary>The seed of the order the images are read in (so that a validation split or the test sixth takes every class).</summary>
    private const ulong OrderSeed = 20260101;

    public static bool Looks(string directory) => Split(directory) is not null || ImageFolder.IsImageFolder(directory);

    /// <summary>
    /// Reads the tree, resizing every image to <paramref name="imageShape"/>'s answer for the channel count of the
    /// first image (1 for grey, 3 for colour; the others are converted to it).
    /// </summary>
    public static DataSet Load(string directory, Func<int, (int Channels, int Height, int Width)> imageShape)
    {
        var split = Split(directory);
        string first = split?.Train ?? directory;
        var (c, h, w) = imageShape(ChannelsOfFirstImage(first));
        ImageFolderSet train, test;
        if (split is var (trainRoot, testRoot))
        {
            train = ImageFolder.Read(trainRoot, c, h, w, new ImageFolderOptions { ShuffleSeed = OrderSeed });
            test = ImageFolder.Read(testRoot, c, h, w, new ImageFolderOptions { Classes = train.ClassNames });
            return Make(directory, train.ClassNames, new ImageSet(train.Images, train.Labels, c, h, w), new ImageSet(test.Images, test.Labels, c, h, w),
                $"image folders ({Path.GetFileName(trainRoot)}/, {Path.GetFileName(testRoot)}/)");
        }

        ImageFolderSet all = ImageFolder.Read(directory, c, h, w, new ImageFolderOptions { ShuffleSeed = OrderSeed });
        int testCount = all.Count / 6;
        if (testCount == 0 || all.Count - testCount == 0)
            throw new InvalidDataException($"'{directory}' holds {all.Count} image(s): too few to keep a sixth for testing; give train/ and test/ folders.");
        int kept = all.Count - testCount, size = all.SampleSize;
        var trainSet = new ImageSet(all.Images.AsSpan(0, kept * size).ToArray(), all.Labels.AsSpan(0, kept).ToArray(), c, h, w);
        var testSet = new ImageSet(all.Images.AsSpan(kept * size).ToArray(), all.Labels.AsSpan(kept).ToArray(), c, h, w);
        return Make(directory, all.ClassNames, trainSet, testSet, "image folder (the last sixth is the test set)");
    }

    private static DataSet Make(string directory, System.Collections.Generic.IReadOnlyList<string> classes, ImageSet train, ImageSet test, string format) => new()
    {
        Format = format, Directory = directory, ClassNames = classes, Train = train, Test = test,
    };

    /// <summary>root/train and root/test (or root/val) when both are image folders.</summary>
    private static (string Train, string Test)? Split(string directory)
    {
        string train = Path.Combine(directory, "train");
        if (!ImageFolder.IsImageFolder(train)) return null;
        foreach (string name in new[] { "test", "val" })
        {
            string test = Path.Combine(directory, name);
            if (ImageFolder.IsImageFolder(test)) return (train, test);
        }
        return null;
    }

    /// <summary>1 when the first image (class folders and files in ordinal order) is grey, 3 otherwise or when it cannot be read (ImageFolder then says why).</summary>
    private static int ChannelsOfFirstImage(string root)
    {
        foreach (string folder in Directory.EnumerateDirectories(root).Where(d => !Path.GetFileName(d).StartsWith('.')).Order(StringComparer.Ordinal))
        {
            foreach (string file in Directory.EnumerateFiles(folder).Where(f => !Path.GetFileName(f).StartsWith('.')).Order(StringComparer.Ordinal))
            {
                if (!ImageFolder.Extensions.Contains(Path.GetExtension(file).ToLowerInvariant())) continue;
                try
                {
                    using var stream = File.OpenRead(file);
                    ImageInfo? info = ImageInfo.FromStream(stream);
                    return info?.ColorComponents is ColorComponents.Grey or ColorComponents.GreyAlpha ? 1 : 3;
                }
                catch (IOException)
                {
                    return 3;
                }
            }
        }
        return 3;
    }
}
