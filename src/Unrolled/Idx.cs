using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;

namespace Unrolled;

/// <summary>
/// Reads the idx files of MNIST and Fashion-MNIST: a 4-byte magic number (two zero bytes, a type
/// byte, 0x08 for unsigned bytes, and the number of dimensions), each dimension as a big-endian
/// 32-bit integer, then the values row-major. Files compressed with gzip (starting with the bytes
/// 1f 8b) are decompressed on the fly. Every malformation is an <see cref="InvalidDataException"/>
/// whose message names the file.
/// </summary>
public static class Idx
{
    /// <summary>The magic number of an idx file of unsigned bytes with three dimensions (images).</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>The magic number of an idx file of unsigned bytes with one dimension (labels).</summary>
    public const int LabelsMagic = 0x00000801;

    /// <summary>
    /// Reads an image file: <paramref name="count"/> images of <paramref name="rows"/> × <paramref name="cols"/>
    /// pixels, returned row-major and batch first (the layout of a one-channel network's input), each byte scaled to [0, 1].
    /// </summary>
    public static float[] ReadImages(string path, out int count, out int rows, out int cols)
    {
        ArgumentNullException.ThrowIfNull(path);
        using FileStream file = OpenRead(path);
        return ReadImages(file, out count, out rows, out cols, Path.GetFileName(path));
    }

    /// <summary>Reads an image file from a stream; <paramref name="name"/> is used in error messages.</summary>
    public static float[] ReadImages(Stream stream, out int count, out int rows, out int cols, string name = "<stream>")
    {
        ArgumentNullException.ThrowIfNull(stream);
        byte[] pixels = ReadUnsignedBytes(stream, name, ImagesMagic, "image", out int[] dimensions);
        (count, rows, cols) = (dimensions[0], dimensions[1], dimensions[2]);

        var result = new float[pixels.Length];
        for (int i = 0; i < pixels.Length; i++)
            result[i] = pixels[i] / 255f;
        return result;
    }

    /// <summary>Reads a label file: one label (0–255) per sample.</summary>
    public static int[] ReadLabels(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using FileStream file = OpenRead(path);
        return ReadLabels(file, Path.GetFileName(path));
    }

    /// <summary>Reads a label file from a stream; <paramref name="name"/> is used in error messages.</summary>
    public static int[] ReadLabels(Stream stream, string name = "<stream>")
    {
        ArgumentNullException.ThrowIfNull(stream);
        byte[] bytes = ReadUnsignedBytes(stream, name, LabelsMagic, "label", out _);
        var labels = new int[bytes.Length];
        for (int i = 0; i < bytes.Length; i++)
            labels[i] = bytes[i];
        return labels;
    }

    private static FileStream OpenRead(string path) =>
        new(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16, FileOptions.SequentialScan);

    /// <summary>
    /// Checks the header against <paramref name="magic"/> and returns exactly the number of bytes the
    /// dimensions announce, decompressing gzip if the stream starts with its magic bytes.
    /// </summary>
    private static byte[] ReadUnsignedBytes(Stream stream, string name, int magic, string what, out int[] dimensions)
    {
        // Peek at two bytes to tell gzip from raw, then hand them back in front of the rest.
        byte[] start = new byte[2];
        int got = stream.ReadAtLeast(start, start.Length, throwOnEndOfStream: false);
        bool gzip = got == 2 && start[0] == 0x1f && start[1] == 0x8b;
        Stream input = new PrefixedStream(start.AsMemory(0, got), stream);
        if (gzip)
            input = new GZipStream(input, CompressionMode.Decompress, leaveOpen: true);

        try
        {
            return ReadPayload(input, name, magic, what, gzip, out dimensions);
        }
        catch (InvalidDataException e) when (gzip && e.Data["Unrolled.Idx"] is null)
        {
            // Thrown by the decompressor, not by the checks below (which mark their exceptions). Its own
            // message is generic (a bad checksum reads "unsupported compression method"), so it stays inner.
            throw new InvalidDataException($"'{name}': the gzip data is corrupt: the file is damaged or was not completely written.", e);
        }
        finally
        {
            input.Dispose();
        }
    }

    private static byte[] ReadPayload(Stream input, string name, int magic, string what, bool gzip, out int[] dimensions)
    {
        string holds = gzip ? "the decompressed file holds" : "the file holds";
        // The magic number.
        Span<byte> word = stackalloc byte[4];
        int got = input.ReadAtLeast(word, 4, throwOnEndOfStream: false);
        if (got < 4)
            throw Invalid($"'{name}': truncated: {holds} {got} bytes, fewer than the 4 of the idx magic number.");
        int found = BinaryPrimitives.ReadInt32BigEndian(word);
        if (found != magic)
        {
            string hint = found switch
            {
                ImagesMagic => " (this is an idx image file)",
                LabelsMagic => " (this is an idx label file)",
                _ when word[0] != 0 || word[1] != 0 => " (this is not an idx file)",
                _ => "",
            };
            throw Invalid($"'{name}': not an idx {what} file: magic number 0x{found:X8}{hint}, expected 0x{magic:X8}.");
        }

        // The dimensions, each a big-endian 32-bit count.
        int rank = magic & 0xff;
        dimensions = new int[rank];
        long total = 1;
        for (int d = 0; d < rank; d++)
        {
            got = input.ReadAtLeast(word, 4, throwOnEndOfStream: false);
            if (got < 4)
                throw Invalid($"'{name}': truncated in the header: dimension {d + 1} of {rank} is missing.");
            int size = BinaryPrimitives.ReadInt32BigEndian(word);
            if (size < 0)
                throw Invalid($"'{name}': dimension {d + 1} is {(uint)size}, more than an array can hold.");
            dimensions[d] = size;
            total *= size;
            if (total > Array.MaxLength)
                throw Invalid($"'{name}': the dimensions [{string.Join(", ", dimensions[..(d + 1)])}] hold more values than an array can.");
        }

        // The values: exactly as many as the dimensions say. The buffer grows only as data arrives, so a
        // corrupt header that announces billions of values costs nothing unless the data is really there.
        byte[] data = new byte[Math.Min(total, 1 << 20)];
        int read = 0;
        while (read < total)
        {
            if (read == data.Length)
                Array.Resize(ref data, (int)Math.Min(total, 2L * data.Length));
            int n = input.Read(data, read, data.Length - read);
            if (n == 0)
                throw Invalid($"'{name}': truncated: the header announces {total} bytes of data ({Shape(dimensions)}) but {holds} only {read}.");
            read += n;
        }

        long extra = CountRemaining(input);
        if (extra > 0)
            throw Invalid($"'{name}': {extra} unexpected bytes after the {total} bytes of data the header announces ({Shape(dimensions)}).");
        return data;
    }

    /// <summary>Reads the stream to its end and returns how many bytes were left.</summary>
    private static long CountRemaining(Stream input)
    {
        byte[] scratch = new byte[1 << 16];
        long count = 0;
        int n;
        while ((n = input.Read(scratch, 0, scratch.Length)) > 0)
            count += n;
        return count;
    }

    private static string Shape(int[] dimensions) => string.Join(" × ", dimensions);

    /// <summary>An exception from the format checks, marked so that it is not mistaken for a gzip error.</summary>
    private static InvalidDataException Invalid(string message)
    {
        var exception = new InvalidDataException(message);
        exception.Data["Unrolled.Idx"] = true;
        return exception;
    }

    /// <summary>A read-only stream that yields a few bytes already read, then the rest of another stream (not disposed).</summary>
    private sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream rest) : Stream
    {
        private ReadOnlyMemory<byte> _prefix = prefix;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_prefix.IsEmpty)
                return rest.Read(buffer);
            int n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
            return n;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>Images with their labels, as read from a pair of idx files.</summary>
public sealed class LabeledImages
{
    /// <summary>Wraps images (count × rows × cols values, batch first) and one label per image.</summary>
    public LabeledImages(float[] images, int[] labels, int rows, int cols)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if ((long)labels.Length * rows * cols != images.Length)
            throw new ArgumentException($"{labels.Length} labels need {(long)labels.Length * rows * cols} pixels of {rows}×{cols} images, not {images.Length}.", nameof(images));
        (Images, Labels, Rows, Cols) = (images, labels, rows, cols);
    }

    /// <summary>Count × Rows × Cols values in [0, 1], row-major, batch first.</summary>
    public float[] Images { get; }
    /// <summary>One class index per image.</summary>
    public int[] Labels { get; }
    /// <summary>The number of samples.</summary>
    public int Count => Labels.Length;
    /// <summary>The height of an image.</summary>
    public int Rows { get; }
    /// <summary>The width of an image.</summary>
    public int Cols { get; }

    /// <summary>The number of values in one image (Rows × Cols).</summary>
    public int SampleSize => Rows * Cols;

    /// <summary>The pixels of sample <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> Image(int index) => Images.AsSpan(checked(index * SampleSize), SampleSize);

    /// <summary>Reads an image file and a label file and checks that they describe the same number of samples.</summary>
    public static LabeledImages Read(string imagesPath, string labelsPath)
    {
        float[] images = Idx.ReadImages(imagesPath, out int count, out int rows, out int cols);
        int[] labels = Idx.ReadLabels(labelsPath);
        if (labels.Length != count)
            throw new InvalidDataException(
                $"'{Path.GetFileName(imagesPath)}' holds {count} images but '{Path.GetFileName(labelsPath)}' holds {labels.Length} labels.");
        return new LabeledImages(images, labels, rows, cols);
    }
}

/// <summary>The Fashion-MNIST data set (Zalando Research): 28×28 grey images of clothing in 10 classes,
/// 60,000 for training and 10,000 for testing.</summary>
public static class FashionMnist
{
    /// <summary>The class names, indexed by label.</summary>
    public static IReadOnlyList<string> ClassNames { get; } = new[]
    {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    };

    /// <summary>
    /// Loads the training and test sets from <paramref name="directory"/>, which holds the four files
    /// under their standard names (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
    /// t10k-labels-idx1-ubyte), each gzip'ed with a .gz suffix or not. Checks that each pair agrees in
    /// count, that the images are 28×28 and that every label is a class.
    /// </summary>
    public static (LabeledImages Train, LabeledImages Test) Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"The Fashion-MNIST directory '{directory}' does not exist.");

        LabeledImages train = LoadSet(directory, "train");
        LabeledImages test = LoadSet(directory, "t10k");
        return (train, test);
    }

    private static LabeledImages LoadSet(string directory, string prefix)
    {
        string images = Find(directory, $"{prefix}-images-idx3-ubyte");
        string labels = Find(directory, $"{prefix}-labels-idx1-ubyte");
        LabeledImages set = LabeledImages.Read(images, labels);

        if (set.Rows != 28 || set.Cols != 28)
            throw new InvalidDataException($"'{Path.GetFileName(images)}' holds {set.Rows}×{set.Cols} images; Fashion-MNIST's are 28×28.");
        for (int i = 0; i < set.Labels.Length; i++)
        {
            if ((uint)set.Labels[i] >= (uint)ClassNames.Count)
                throw new InvalidDataException($"'{Path.GetFileName(labels)}': label {i} is {set.Labels[i]}, not a class (0 to {ClassNames.Count - 1}).");
        }
        return set;
    }

    /// <summary>The path of a standard file, preferring the gzip'ed name.</summary>
    private static string Find(string directory, string baseName)
    {
        string gzipped = Path.Combine(directory, baseName + ".gz");
        if (File.Exists(gzipped))
            return gzipped;
        string raw = Path.Combine(directory, baseName);
        if (File.Exists(raw))
            return raw;
        throw new FileNotFoundException($"Fashion-MNIST file missing: neither '{baseName}.gz' nor '{baseName}' is in '{directory}'.", gzipped);
    }
}
