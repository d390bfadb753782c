using System;
using System.Buffers.Binary;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Runtime.CompilerServices;
using Xunit;

namespace Unrolled.Tests;

public sealed class IdxTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("unrolled-idx-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>An idx file: the magic number, the big-endian dimensions, then the bytes.</summary>
    private static byte[] MakeIdx(int magic, int[] dimensions, byte[] data)
    {
        var file = new byte[4 + 4 * dimensions.Length + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(file, magic);
        for (int d = 0; d < dimensions.Length; d++)
            BinaryPrimitives.WriteInt32BigEndian(file.AsSpan(4 + 4 * d), dimensions[d]);
        data.CopyTo(file, 4 + 4 * dimensions.Length);
        return file;
    }

    private static byte[] Gzip(byte[] raw)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true))
            gzip.Write(raw);
        return output.ToArray();
    }

    private string Write(string name, byte[] content)
    {
        string path = Path.Combine(_directory, name);
        File.WriteAllBytes(path, content);
        return path;
    }

    /// <summary>Three 2×4 images whose pixels count up from 0, with 255 as the last pixel.</summary>
    private static (byte[] File, byte[] Pixels) SmallImages()
    {
        byte[] pixels = Enumerable.Range(0, 24).Select(i => (byte)(i * 10)).ToArray();
        pixels[^1] = 255;
        return (MakeIdx(Idx.ImagesMagic, new[] { 3, 2, 4 }, pixels), pixels);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadsImagesRawAndGzipped(bool gzipped)
    {
        var (file, pixels) = SmallImages();
        string path = Write(gzipped ? "images.gz" : "images", gzipped ? Gzip(file) : file);

        float[] images = Idx.ReadImages(path, out int count, out int rows, out int cols);

        Assert.Equal((3, 2, 4), (count, rows, cols));
        Assert.Equal(pixels.Select(p => p / 255f), images);
        Assert.Equal(0f, images[0]);
        Assert.Equal(1f, images[^1]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadsLabelsRawAndGzippedFromAStream(bool gzipped)
    {
        byte[] file = MakeIdx(Idx.LabelsMagic, new[] { 5 }, new byte[] { 9, 0, 3, 255, 1 });
        using var stream = new MemoryStream(gzipped ? Gzip(file) : file);

        Assert.Equal(new[] { 9, 0, 3, 255, 1 }, Idx.ReadLabels(stream, "labels"));
    }

    [Fact]
    public void ReadsAnEmptySet()
    {
        float[] images = Idx.ReadImages(new MemoryStream(MakeIdx(Idx.ImagesMagic, new[] { 0, 28, 28 }, Array.Empty<byte>())),
                                        out int count, out int rows, out int cols);
        Assert.Empty(images);
        Assert.Equal((0, 28, 28), (count, rows, cols));
    }

    [Fact]
    public void RejectsAWrongMagicNumber()
    {
        string labels = Write("labels", MakeIdx(Idx.LabelsMagic, new[] { 2 }, new byte[] { 1, 2 }));
        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(labels, out _, out _, out _));
        Assert.Contains("'labels'", e.Message);
        Assert.Contains("0x00000801", e.Message);
        Assert.Contains("0x00000803", e.Message);

        var (images, _) = SmallImages();
        string imagesPath = Write("images.gz", Gzip(images));
        e = Assert.Throws<InvalidDataException>(() => Idx.ReadLabels(imagesPath));
        Assert.Contains("'images.gz'", e.Message);
        Assert.Contains("image file", e.Message);

        string text = Write("notes.txt", "hello, world"u8.ToArray());
        e = Assert.Throws<InvalidDataException>(() => Idx.ReadLabels(text));
        Assert.Contains("'notes.txt'", e.Message);
        Assert.Contains("not an idx file", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RejectsTruncatedData(bool gzipped)
    {
        var (file, _) = SmallImages();
        byte[] cut = file[..^5];
        string path = Write("cut", gzipped ? Gzip(cut) : cut);

        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path, out _, out _, out _));
        Assert.Contains("'cut'", e.Message);
        Assert.Contains("24 bytes", e.Message);   // expected
        Assert.Contains("only 19", e.Message);    // actual
    }

    [Fact]
    public void RejectsATruncatedHeader()
    {
        var (file, _) = SmallImages();
        foreach (int length in new[] { 0, 3, 4, 9 })
        {
            string path = Write($"head{length}", file[..length]);
            var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path, out _, out _, out _));
            Assert.Contains($"'head{length}'", e.Message);
            Assert.Contains("truncated", e.Message);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RejectsExtraBytes(bool gzipped)
    {
        byte[] file = MakeIdx(Idx.LabelsMagic, new[] { 3 }, new byte[] { 1, 2, 3, 4, 5 });
        string path = Write("long", gzipped ? Gzip(file) : file);

        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadLabels(path));
        Assert.Contains("'long'", e.Message);
        Assert.Contains("2 unexpected bytes", e.Message);
    }

    [Fact]
    public void RejectsDimensionsTooLargeForAnArrayWithoutAllocating()
    {
        byte[] file = MakeIdx(Idx.ImagesMagic, new[] { 100_000, 1000, 1000 }, new byte[10]);
        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(new MemoryStream(file), out _, out _, out _, "big"));
        Assert.Contains("'big'", e.Message);

        // Plausible dimensions with far too little data behind them: the data is missing, not allocated.
        file = MakeIdx(Idx.ImagesMagic, new[] { 1000, 1000, 1000 }, new byte[10]);
        e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(new MemoryStream(file), out _, out _, out _, "short"));
        Assert.Contains("1000000000 bytes", e.Message);
        Assert.Contains("only 10", e.Message);
    }

    [Fact]
    public void RejectsCorruptGzip()
    {
        var (file, _) = SmallImages();
        byte[] gzip = Gzip(file);

        // A deflate block of the reserved type 3 right after the 10-byte gzip header.
        byte[] badBlock = (byte[])gzip.Clone();
        badBlock[10] = 0xFF;
        string path = Write("bad-block.gz", badBlock);
        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path, out _, out _, out _));
        Assert.Contains("'bad-block.gz'", e.Message);
        Assert.Contains("gzip", e.Message);

        // A wrong checksum in the trailer (CRC-32, then the length).
        byte[] badCrc = (byte[])gzip.Clone();
        badCrc[^8] ^= 0xFF;
        path = Write("bad-crc.gz", badCrc);
        e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path, out _, out _, out _));
        Assert.Contains("'bad-crc.gz'", e.Message);

        // Cut in the middle of the compressed data.
        path = Write("cut.gz", gzip[..(gzip.Length / 2)]);
        e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path, out _, out _, out _));
        Assert.Contains("'cut.gz'", e.Message);
    }

    [Fact]
    public void FashionMnistLoadChecksThatImagesAndLabelsAgree()
    {
        byte[] Images(int count) => MakeIdx(Idx.ImagesMagic, new[] { count, 28, 28 }, new byte[count * 784]);
        byte[] Labels(params byte[] labels) => MakeIdx(Idx.LabelsMagic, new[] { labels.Length }, labels);

        // Raw and gzip'ed names are both accepted.
        Write("train-images-idx3-ubyte", Images(3));
        Write("train-labels-idx1-ubyte.gz", Gzip(Labels(0, 9, 4)));
        Write("t10k-images-idx3-ubyte.gz", Gzip(Images(2)));
        Write("t10k-labels-idx1-ubyte", Labels(1, 2));
        var (train, test) = FashionMnist.Load(_directory);
        Assert.Equal((3, 28, 28), (train.Count, train.Rows, train.Cols));
        Assert.Equal(new[] { 0, 9, 4 }, train.Labels);
        Assert.Equal(2, test.Count);
        Assert.Equal(784, test.Image(1).Length);

        Write("t10k-labels-idx1-ubyte", Labels(1, 2, 3));
        var e = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(_directory));
        Assert.Contains("2 images", e.Message);
        Assert.Contains("3 labels", e.Message);

        Write("t10k-labels-idx1-ubyte", Labels(1, 10));
        e = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(_directory));
        Assert.Contains("label 1 is 10", e.Message);

        File.Delete(Path.Combine(_directory, "t10k-labels-idx1-ubyte"));
        Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(_directory));
    }

    [Fact]
    public void ClassNamesAreFashionMnists()
    {
        Assert.Equal(
            new[] { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" },
            FashionMnist.ClassNames);
    }

    [Fact]
    public void LoadsTheShippedFashionMnist()
    {
        string directory = Path.Combine(RepositoryRoot(), "examples", "data", "fashion-mnist");
        var (train, test) = FashionMnist.Load(directory);

        Assert.Equal((60000, 28, 28), (train.Count, train.Rows, train.Cols));
        Assert.Equal((10000, 28, 28), (test.Count, test.Rows, test.Cols));
        Assert.Equal(60000 * 784, train.Images.Length);
        Assert.Equal(10000 * 784, test.Images.Length);

        foreach (var set in new[] { train, test })
        {
            Assert.All(set.Labels, label => Assert.InRange(label, 0, 9));
            // Fashion-MNIST is balanced: every class has a tenth of the samples.
            Assert.All(set.Labels.GroupBy(l => l), g => Assert.Equal(set.Count / 10, g.Count()));
            Assert.Equal(0f, set.Images.Min());
            Assert.Equal(1f, set.Images.Max());
        }
    }

    /// <summary>The directory holding Generated.sln: above the test binaries, or else above this source file
    /// (for a build whose output lies outside the repository).</summary>
    private static string RepositoryRoot([CallerFilePath] string sourceFile = "")
    {
        foreach (string start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile) ?? "" })
        {
            for (var directory = new DirectoryInfo(start); directory is not null; directory = directory.Parent)
            {
                if (File.Exists(Path.Combine(directory.FullName, "Generated.sln")))
                    return directory.FullName;
            }
        }
        throw new InvalidOperationException($"No Generated.sln above {AppContext.BaseDirectory}.");
    }
}
