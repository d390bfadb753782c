using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using StbImageWriteSharp;
using Unrolled.Data;
using Xunit;
using WriteComponents = StbImageWriteSharp.ColorComponents;

namespace Unrolled.Tests;

public sealed class ImageFolderTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("unrolled-imagefolder-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>Writes an image (interleaved bytes, <paramref name="components"/> a pixel) as PNG, JPEG or BMP by the file's extension.</summary>
    private string Write(string relative, int width, int height, int components, byte[] pixels, string? under = null)
    {
        Assert.Equal(width * height * components, pixels.Length);
        string path = Path.Combine(under ?? _root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var stream = File.Create(path);
        var writer = new ImageWriter();
        var kind = (WriteComponents)components;
        switch (Path.GetExtension(path).ToLowerInvariant())
        {
            case ".png":
                writer.WritePng(pixels, width, height, kind, stream);
                break;
            case ".bmp":
                writer.WriteBmp(pixels, width, height, kind, stream);
                break;
            default:
                writer.WriteJpg(pixels, width, height, kind, stream, 100);
                break;
        }

        return path;
    }

    /// <summary>Pixel (x, y) channel k of a test pattern: distinct in every position and channel.</summary>
    private static byte Pattern(int x, int y, int k, int salt) => (byte)(17 * x + 59 * y + 101 * k + 7 * salt);

    private static byte[] Pixels(int width, int height, int components, int salt)
    {
        var pixels = new byte[width * height * components];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                for (int k = 0; k < components; k++)
                    pixels[(y * width + x) * components + k] = Pattern(x, y, k, salt);
            }
        }

        return pixels;
    }

    private static byte[] Uniform(int width, int height, params byte[] colour) =>
        Enumerable.Range(0, width * height).SelectMany(_ => colour).ToArray();

    [Fact]
    public void Classes_are_folders_in_ordinal_order_and_files_in_ordinal_order_within_each()
    {
        // Ordinal: upper case before lower case, "b10" before "b2".
        foreach (string name in new[] { "cat/b2.png", "cat/b10.png", "cat/A.png", "Dog/x.png", "ant/only.png" })
            Write(name, 2, 2, 1, Pixels(2, 2, 1, name.Length));
        File.WriteAllText(Path.Combine(_root, "cat", ".DS_Store"), "not an image");
        Directory.CreateDirectory(Path.Combine(_root, ".hidden"));

        ImageFolderSet set = ImageFolder.Read(_root, 1, 2, 2);
        Assert.Equal(new[] { "Dog", "ant", "cat" }, set.ClassNames);
        Assert.Equal(new[] { 0, 1, 2, 2, 2 }, set.Labels);
        Assert.Equal(new[] { "Dog/x.png", "ant/only.png", "cat/A.png", "cat/b10.png", "cat/b2.png" },
            set.Files.Select(f => Path.GetRelativePath(_root, f).Replace('\\', '/')));
        Assert.Equal(5, set.Count);
        Assert.Equal((1, 2, 2, 4), (set.Channels, set.Height, set.Width, set.SampleSize));
        Assert.Equal(5 * 4, set.Images.Length);
        Assert.Equal(0, set.ResizedCount);
        Assert.Equal(0, set.ConvertedCount);
        Assert.True(ImageFolder.IsImageFolder(_root));
        Assert.False(ImageFolder.IsImageFolder(Path.Combine(_root, "cat")));
    }

    [Fact]
    public void Png_pixels_are_planar_bytes_over_255_then_normalised_per_channel()
    {
        byte[] a = Pixels(5, 4, 3, 1), b = Pixels(5, 4, 3, 2);
        Write("one/a.png", 5, 4, 3, a);
        Write("two/b.PNG", 5, 4, 3, b);

        ImageFolderSet plain = ImageFolder.Read(_root, 3, 4, 5);
        float[] mean = { 0.5f, 0.25f, 0.75f }, std = { 0.5f, 0.2f, 0.125f };
        ImageFolderSet normalised = ImageFolder.Read(_root, 3, 4, 5, new ImageFolderOptions { Mean = mean, Std = std });
        Assert.Equal(new[] { 0, 1 }, plain.Labels);
        for (int n = 0; n < 2; n++)
        {
            byte[] source = n == 0 ? a : b;
            ReadOnlySpan<float> image = plain.Image(n), scaled = normalised.Image(n);
            for (int k = 0; k < 3; k++)
            {
                for (int y = 0; y < 4; y++)
                {
                    for (int x = 0; x < 5; x++)
                    {
                        int i = k * 20 + y * 5 + x;
                        float expected = source[(y * 5 + x) * 3 + k] / 255f;
                        Assert.Equal(expected, image[i]);
                        Assert.Equal((expected - mean[k]) / std[k], scaled[i], 5);
                    }
                }
            }
        }
    }

    [Fact]
    public void Grey_becomes_rgb_rgb_becomes_luma_and_alpha_is_dropped_unless_strict()
    {
        byte[] grey = Pixels(3, 2, 1, 3), rgb = Pixels(3, 2, 3, 4), rgba = Pixels(3, 2, 4, 5);
        Write("g/grey.png", 3, 2, 1, grey);
        Write("r/rgb.png", 3, 2, 3, rgb);
        Write("r/rgba.png", 3, 2, 4, rgba);

        ImageFolderSet colour = ImageFolder.Read(_root, 3, 2, 3);
        Assert.Equal(2, colour.ConvertedCount); // grey and RGBA
        for (int i = 0; i < 6; i++)
        {
            for (int k = 0; k < 3; k++)
            {
                Assert.Equal(grey[i] / 255f, colour.Image(0)[k * 6 + i]);
                Assert.Equal(rgb[i * 3 + k] / 255f, colour.Image(1)[k * 6 + i]);
                Assert.Equal(rgba[i * 4 + k] / 255f, colour.Image(2)[k * 6 + i]);
            }
        }

        ImageFolderSet mono = ImageFolder.Read(_root, 1, 2, 3);
        Assert.Equal(2, mono.ConvertedCount); // RGB and RGBA
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal(grey[i] / 255f, mono.Image(0)[i]);
            Assert.Equal((0.299 * rgb[i * 3] + 0.587 * rgb[i * 3 + 1] + 0.114 * rgb[i * 3 + 2]) / 255, mono.Image(1)[i], 5);
            Assert.Equal((0.299 * rgba[i * 4] + 0.587 * rgba[i * 4 + 1] + 0.114 * rgba[i * 4 + 2]) / 255, mono.Image(2)[i], 5);
        }

        // Strict: the file's channels, alpha included, must be the network's. Files are decoded in order, so the
        // first refused is the grey one for RGB and the RGB one for grey.
        var options = new ImageFolderOptions { ConvertChannels = false };
        var error = Assert.Throws<ImageFolderException>(() => ImageFolder.Read(_root, 3, 2, 3, options));
        Assert.Equal(Path.Combine(_root, "g", "grey.png"), error.Path);
        Assert.Contains("grey (1 channel), but the network takes 3 (RGB)", error.Message);
        error = Assert.Throws<ImageFolderException>(() => ImageFolder.Read(_root, 1, 2, 3, options));
        Assert.Equal(Path.Combine(_root, "r", "rgb.png"), error.Path);
        Assert.Contains("RGB (3 channels), but the network takes 1 (grey)", error.Message);
        File.Delete(Path.Combine(_root, "g", "grey.png"));
        Directory.Delete(Path.Combine(_root, "g"));
        error = Assert.Throws<ImageFolderException>(() => ImageFolder.Read(_root, 3, 2, 3, ImageFolderOptions.Strict));
        Assert.Equal(Path.Combine(_root, "r", "rgba.png"), error.Path);
        Assert.Contains("RGBA (4 channels)", error.Message);
    }

    /// <summary>PyTorch's bilinear (align_corners=False) of one plane, computed directly in two dimensions.</summary>
    private static double BilinearReference(Func<int, int, double> at, int inH, int inW, int outH, int outW, int y, int x)
    {
        static (int, int, double) Axis(int o, int input, int output)
        {
            double s = Math.Max(0, (o + 0.5) * input / output - 0.5);
            int i0 = Math.Min((int)s, input - 1);
            int i1 = Math.Min(i0 + 1, input - 1);
            return (i0, i1, Math.Min(s - i0, 1));
        }

        var (y0, y1, ly) = Axis(y, inH, outH);
        var (x0, x1, lx) = Axis(x, inW, outW);
        return (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
    }

    [Theory]
    [InlineData(3, 2, 7, 5)] // enlarge
    [InlineData(9, 8, 4, 3)] // shrink by a fraction
    [InlineData(6, 6, 6, 2)] // one axis only
    public void Bilinear_resize_matches_pytorchs_align_corners_false(int inW, int inH, int outW, int outH)
    {
        byte[] pixels = Pixels(inW, inH, 3, 6);
        Write("c/i.png", inW, inH, 3, pixels);
        ImageFolderSet set = ImageFolder.Read(_root, 3, outH, outW);
        Assert.Equal(1, set.ResizedCount);
        for (int k = 0; k < 3; k++)
        {
            for (int y = 0; y < outH; y++)
            {
                for (int x = 0; x < outW; x++)
                {
                    double expected = BilinearReference((sy, sx) => pixels[(sy * inW + sx) * 3 + k] / 255.0, inH, inW, outH, outW, y, x);
                    Assert.True(Math.Abs(expected - set.Image(0)[k * outH * outW + y * outW + x]) < 1e-6, $"({k}, {y}, {x}): {expected}");
                }
            }
        }
    }

    [Fact]
    public void Area_resize_averages_the_covered_pixels_weighted_by_overlap()
    {
        // 4×4 to 2×2: the mean of each 2×2 block (adaptive_avg_pool2d); 3 wide to 2: (p0 + p1/2) / 1.5 and (p1/2 + p2) / 1.5.
        byte[] square = Pixels(4, 4, 1, 7), row = { 30, 90, 210 };
        Write("a/square.png", 4, 4, 1, square);
        string other = _root + "-row";
        Write("b/row.bmp", 3, 1, 1, row, other);
        var area = new ImageFolderOptions { Resize = ImageResize.Area };

        ImageFolderSet blocks = ImageFolder.Read(_root, 1, 2, 2, area);
        for (int y = 0; y < 2; y++)
        {
            for (int x = 0; x < 2; x++)
            {
                double mean = (square[2 * y * 4 + 2 * x] + square[2 * y * 4 + 2 * x + 1] + square[(2 * y + 1) * 4 + 2 * x] + square[(2 * y + 1) * 4 + 2 * x + 1]) / 4.0;
                Assert.Equal(mean / 255, blocks.Image(0)[y * 2 + x], 6);
            }
        }

        ImageFolderSet thirds = ImageFolder.Read(other, 1, 1, 2, area);
        Directory.Delete(other, recursive: true);
        Assert.Equal((30 + 45) / 1.5 / 255, thirds.Image(0)[0], 6);
        Assert.Equal((45 + 210) / 1.5 / 255, thirds.Image(0)[1], 6);

        // Strict size: another size is refused, naming the file.
        var error = Assert.Throws<ImageFolderException>(() => ImageFolder.Read(_root, 1, 2, 2, new ImageFolderOptions { Resize = ImageResize.None }));
        Assert.Equal(Path.Combine(_root, "a", "square.png"), error.Path);
        Assert.Contains("4×4 pixels (width × height), but the network takes 2×2", error.Message);
        Assert.Equal(16, ImageFolder.Read(_root, 1, 4, 4, ImageFolderOptions.Strict).Images.Length);
    }

    [Fact]
    public void Bmp_decodes_exactly_and_jpeg_closely()
    {
        byte[] pixels = Pixels(4, 3, 3, 8);
        Write("bmp/p.bmp", 4, 3, 3, pixels);
        Write("jpg/flat.jpg", 8, 8, 3, Uniform(8, 8, 200, 100, 50));
        Write("jpg/grey.JPEG", 8, 8, 1, Uniform(8, 8, 77));

        ImageFolderSet set = ImageFolder.Read(_root, 3, 3, 4);
        Assert.Equal(new[] { "bmp", "jpg" }, set.ClassNames);
        Assert.Equal(new[] { 0, 1, 1 }, set.Labels);
        for (int i = 0; i < 12; i++)
        {
            for (int k = 0; k < 3; k++)
                Assert.Equal(pixels[i * 3 + k] / 255f, set.Image(0)[k * 12 + i]);
        }

        // JPEG is lossy: a flat colour decodes to within 2 levels; the 8×8 images were resized (flat stays flat).
        float[] flat = { 200, 100, 50 };
        for (int k = 0; k < 3; k++)
        {
            for (int i = 0; i < 12; i++)
            {
                Assert.InRange(set.Image(2)[k * 12 + i] * 255, 75, 79); // grey.JPEG, after flat.jpg
                Assert.InRange(set.Image(1)[k * 12 + i] * 255, flat[k] - 2, flat[k] + 2);
            }
        }

        Assert.Equal(2, set.ResizedCount);
        Assert.Equal(0, set.ConvertedCount); // stb_image_write stores even a grey JPEG as three YCbCr channels
    }

    [Fact]
    public void A_network_gives_the_shape_and_fit_trains_on_the_set()
    {
        // FitNet's task (1×6×6, 3 classes): class c has columns 2c and 2c + 1 bright. 16 noisy PNGs a class.
        var random = new Random(3);
        string[] names = { "left", "middle", "right" };
        for (int c = 0; c < 3; c++)
        {
            for (int n = 0; n < 16; n++)
            {
                var pixels = new byte[36];
                for (int r = 0; r < 6; r++)
                {
                    for (int col = 0; col < 6; col++)
                        pixels[r * 6 + col] = (byte)(random.Next(100) + (col / 2 == c ? 150 : 0));
                }

                Write($"{names[c]}/{n:D2}.png", 6, 6, 1, pixels);
            }
        }

        var net = new FitNet(seed: 1);
        ImageFolderSet set = ImageFolder.Read(_root, net, new ImageFolderOptions { ShuffleSeed = 5 });
        Assert.Equal(new[] { "left", "middle", "right" }, set.ClassNames);
        Assert.Equal(FitNet.InputSize, set.SampleSize);
        Assert.Equal(48, set.Count);
        Assert.NotEqual(Enumerable.Range(0, 48).Select(i => i / 16), set.Labels); // shuffled
        Assert.Equal(Enumerable.Repeat(16, 3), set.Labels.GroupBy(l => l).OrderBy(g => g.Key).Select(g => g.Count()));
        // The same seed gives the same order; each file keeps its label.
        ImageFolderSet again = ImageFolder.Read(_root, net, new ImageFolderOptions { ShuffleSeed = 5 });
        Assert.Equal(set.Files, again.Files);
        Assert.Equal(set.Images, again.Images);
        for (int i = 0; i < set.Count; i++)
            Assert.Equal(names[set.Labels[i]], Path.GetFileName(Path.GetDirectoryName(set.Files[i])));

        TrainingHistory history = net.Fit(set.Images, set.Labels, new FitOptions
        {
            Epochs = 8, BatchSize = 8, Optimizer = Optimizer.Adam(2e-2f), ValidationSplit = 0.25, Seed = 1,
        });
        Assert.True(history[^1].ValidationAccuracy >= 0.9, $"validation accuracy {history[^1].ValidationAccuracy}");
        Assert.Equal(history[^1].ValidationAccuracy, net.Evaluate(set.Images.AsSpan(36 * 36), set.Labels.AsSpan(36)), 6);

        // The test set of a tree must have the training set's classes.
        string test = _root + "-test";
        try
        {
            Write("left/a.png", 6, 6, 1, new byte[36], test);
            Write("right/a.png", 6, 6, 1, new byte[36], test);
            var error = Assert.Throws<ImageFolderException>(() => ImageFolder.Read(test, net, new ImageFolderOptions { Classes = set.ClassNames }));
            Assert.Equal(test, error.Path);
            Assert.Contains("missing middle", error.Message);
            Write("middle/a.png", 6, 6, 1, new byte[36], test);
            Assert.Equal(new[] { 0, 1, 2 }, ImageFolder.Read(test, net, new ImageFolderOptions { Classes = set.ClassNames }).Labels);
            Write("zebra/a.png", 6, 6, 1, new byte[36], test);
            error = Assert.Throws<ImageFolderException>(() => ImageFolder.Read(test, net, new ImageFolderOptions { Classes = set.ClassNames }));
            Assert.Contains("not expected zebra", error.Message);
        }
        finally
        {
            Directory.Delete(test, recursive: true);
        }
    }

    /// <summary>Builds a good two-class tree, spoils it with <paramref name="spoil"/>, and expects a refusal naming the returned path.</summary>
    private ImageFolderException Refused(Func<string> spoil, string expected, ImageFolderOptions? options = null)
    {
        Write("a/1.png", 2, 2, 1, Pixels(2, 2, 1, 1));
        Write("b/1.png", 2, 2, 1, Pixels(2, 2, 1, 2));
        string culprit = spoil();
        var error = Assert.Throws<ImageFolderException>(() => ImageFolder.Read(_root, 1, 2, 2, options));
        Assert.Equal(Path.GetFullPath(culprit), error.Path);
        Assert.StartsWith(error.Path + ": ", error.Message);
        Assert.Contains(expected, error.Message);
        return error;
    }

    [Fact]
    public void An_empty_class_folder_is_refused()
    {
        Refused(() =>
        {
            string empty = Path.Combine(_root, "c");
            Directory.CreateDirectory(empty);
            File.WriteAllText(Path.Combine(empty, ".keep"), "");
            return empty;
        }, "class folder 'c' is empty");
    }

    [Theory]
    [InlineData("b/2.gif", "unknown extension '.gif'")]
    [InlineData("b/notes.txt", "unknown extension '.txt'")]
    [InlineData("b/README", "no extension")]
    [InlineData("labels.csv", "a file beside the class folders")]
    public void A_file_of_another_kind_is_refused(string relative, string expected)
    {
        Refused(() =>
        {
            string path = Path.Combine(_root, relative);
            File.WriteAllText(path, "x");
            return path;
        }, expected);
    }

    [Fact]
    public void A_folder_inside_a_class_folder_is_refused()
    {
        Refused(() =>
        {
            string nested = Path.Combine(_root, "a", "more");
            Write("1.png", 2, 2, 1, Pixels(2, 2, 1, 3), nested);
            return nested;
        }, "a folder inside class folder 'a'");
    }

    public static IEnumerable<object[]> Corruptions() => new[]
    {
        new object[] { "garbage.png", "cannot be decoded as PNG" },
        new object[] { "truncated.png", "cannot be decoded as PNG" },
        new object[] { "truncated.jpg", "truncated: the JPEG data ends after" },
        new object[] { "truncated.bmp", "truncated: the BMP's 16×16 pixels at 24 bits need" },
        new object[] { "garbage.bmp", "cannot be decoded as BMP" },
        new object[] { "empty.jpeg", "the file is empty" },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void An_undecodable_image_is_refused_naming_it_and_nothing_is_returned(string name, string expected)
    {
        Refused(() =>
        {
            string path = Path.Combine(_root, "b", name);
            byte[] bytes;
            if (name.StartsWith("garbage", StringComparison.Ordinal))
            {
                bytes = new byte[300];
                new Random(4).NextBytes(bytes);
            }
            else if (name.StartsWith("truncated", StringComparison.Ordinal))
            {
                string whole = Write("whole" + Path.GetExtension(name), 16, 16, 3, Pixels(16, 16, 3, 9), _root + "-whole");
                byte[] all = File.ReadAllBytes(whole);
                Directory.Delete(Path.GetDirectoryName(whole)!, recursive: true);
                bytes = all[..(all.Length / 2)];
            }
            else
            {
                bytes = Array.Empty<byte>();
            }

            File.WriteAllBytes(path, bytes);
            return path;
        }, expected);
    }

    [Fact]
    public void A_tree_without_classes_or_a_missing_root_is_refused()
    {
        var error = Assert.Throws<ImageFolderException>(() => ImageFolder.Read(_root, 1, 2, 2));
        Assert.Equal(_root, error.Path);
        Assert.Contains("holds no class folders", error.Message);

        string missing = Path.Combine(_root, "nowhere");
        error = Assert.Throws<ImageFolderException>(() => ImageFolder.Read(missing, 1, 2, 2));
        Assert.Equal(missing, error.Path);
        Assert.Contains("does not exist", error.Message);
        Assert.False(ImageFolder.IsImageFolder(missing));

        // A folder of image folders (train/, test/): the nested class folders are named in the error.
        Write("train/cat/1.png", 2, 2, 1, Pixels(2, 2, 1, 1));
        error = Assert.Throws<ImageFolderException>(() => ImageFolder.Read(_root, 1, 2, 2));
        Assert.Equal(Path.Combine(_root, "train", "cat"), error.Path);
        Assert.Contains("a folder of image folders", error.Message);

        Assert.Throws<ArgumentOutOfRangeException>(() => ImageFolder.Read(Path.Combine(_root, "train"), 2, 2, 2));
        Assert.Throws<ArgumentException>(() => ImageFolder.Read(Path.Combine(_root, "train"), 1, 2, 2, new ImageFolderOptions { Mean = new[] { 0f } }));
        Assert.Throws<ArgumentException>(() => ImageFolder.Read(Path.Combine(_root, "train"), 3, 2, 2, new ImageFolderOptions { Mean = new[] { 0f }, Std = new[] { 1f } }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageFolder.Read(Path.Combine(_root, "train"), 1, 2, 2, new ImageFolderOptions { Mean = new[] { 0f }, Std = new[] { 0f } }));
    }
}
