using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using StbImageSharp;

namespace Unrolled.Data;

/// <summary>An image folder could not be read; <see cref="Path"/> names the file or folder at fault.</summary>
public sealed class ImageFolderException : Exception
{
    public ImageFolderException(string path, string message, Exception? inner = null)
        : base($"{path}: {message}", inner) => Path = path;

    /// <summary>The file or folder the message is about.</summary>
    public string Path { get; }
}

/// <summary>What <see cref="ImageFolder.Read(string, int, int, int, ImageFolderOptions?)"/> does with images that do not fit the network.</summary>
public sealed record ImageFolderOptions
{
    /// <summary>Resizing on, channel conversion on, no normalisation, sorted order (the defaults).</summary>
    public static ImageFolderOptions Default { get; } = new();

    /// <summary>Every image must already have the network's size and channel count; anything else is refused.</summary>
    public static ImageFolderOptions Strict { get; } = new() { Resize = ImageResize.None, ConvertChannels = false };

    /// <summary>
    /// How an image of another height or width is fitted: <see cref="ImageResize.Bilinear"/> (the default, as Keras'
    /// image_dataset_from_directory), <see cref="ImageResize.Area"/>, or <see cref="ImageResize.None"/> to refuse it.
    /// The aspect ratio is not kept (no crop, no padding).
    /// </summary>
    public ImageResize Resize { get; init; } = ImageResize.Bilinear;

    /// <summary>
    /// Whether an image whose stored channels differ from the network's is converted (the default) or refused.
    /// Grey to RGB copies the grey value into the three channels; RGB to grey is the luma
    /// 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as PIL's convert("L")), computed in floats. An alpha channel is
    /// dropped, not composited. When false, the file's channel count, alpha included, must equal the network's.
    /// </summary>
    public bool ConvertChannels { get; init; } = true;

    /// <summary>Per-channel means: each channel becomes (x − mean) / std, x in [0, 1]. Give both or neither.</summary>
    public float[]? Mean { get; init; }

    /// <summary>Per-channel standard deviations (finite, greater than 0).</summary>
    public float[]? Std { get; init; }

    /// <summary>
    /// The class folders expected, in label order (typically the training set's <see cref="ImageFolderSet.ClassNames"/>
    /// when reading its test set): the folder must hold exactly these, or it is refused, so that labels mean the same
    /// in both. Null: the class folders found, in ordinal order.
    /// </summary>
    public IReadOnlyList<string>? Classes { get; init; }

    /// <summary>
    /// Null: the samples come class by class, each class's files in ordinal order. A seed: in an order shuffled with it
    /// (the same for a seed). Shuffle when using <see cref="FitOptions.ValidationSplit"/>, which holds out the last
    /// samples and would otherwise take only the last classes.
    /// </summary>
    public ulong? ShuffleSeed { get; init; }
}

/// <summary>
/// Images decoded from an image folder: <see cref="Count"/> × <see cref="Channels"/> × <see cref="Height"/> × <see cref="Width"/>
/// floats, batch first, each image channel by channel (planar, as the network takes them), with their labels, as
/// <see cref="Cifar10Set"/> and <see cref="LabeledImages"/> hold them: pass <see cref="Images"/> and <see cref="Labels"/>
/// to Fit, Evaluate or <see cref="Batches"/>.
/// </summary>
public sealed class ImageFolderSet
{
    internal ImageFolderSet(float[] images, int[] labels, string[] files, string[] classNames, int channels, int height, int width,
        int resized, int converted)
    {
        Images = images;
        Labels = labels;
        Files = files;
        ClassNames = classNames;
        Channels = channels;
        Height = height;
        Width = width;
        ResizedCount = resized;
        ConvertedCount = converted;
    }

    /// <summary>The pixels, in [0, 1] or normalised.</summary>
    public float[] Images { get; }

    /// <summary>The class index of each image: its folder's position in <see cref="ClassNames"/>.</summary>
    public int[] Labels { get; }

    /// <summary>The full path of each image's file.</summary>
    public IReadOnlyList<string> Files { get; }

    /// <summary>The class folders' names, in label order.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int Count => Labels.Length;

    /// <summary>Floats per image (C·H·W).</summary>
    public int SampleSize => Channels * Height * Width;

    /// <summary>How many images had another size and were resized.</summary>
    public int ResizedCount { get; }

    /// <summary>How many images had other channels (another colour count or an alpha channel) and were converted.</summary>
    public int ConvertedCount { get; }

    /// <summary>The pixels of image <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> Image(int index) => Images.AsSpan(checked(index * SampleSize), SampleSize);
}

/// <summary>
/// Reads an image-folder tree, root/&lt;class&gt;/&lt;image&gt;.png|jpg|jpeg|bmp (torchvision's ImageFolder, Keras'
/// image_dataset_from_directory): one folder a class, classes labelled in ordinal order of their names, decoded by
/// StbImageSharp (managed, no native code), fitted to the network's C × H × W as <see cref="ImageFolderOptions"/> says.
/// </summary>
public static class ImageFolder
{
    /// <summary>The file extensions read (case does not matter).</summary>
    public static IReadOnlyList<string> Extensions { get; } = new[] { ".png", ".jpg", ".jpeg", ".bmp" };

    private const string Expected = "root/<class>/<image>.png|jpg|jpeg|bmp";

    // StbImageSharp keeps its failure reason in a static field: one decode at a time keeps each message its own.
    private static readonly object DecoderLock = new();

    /// <summary>Reads <paramref name="root"/> for <paramref name="network"/>'s input shape (its first layer's C × H × W).</summary>
    public static ImageFolderSet Read(string root, INetwork network, ImageFolderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (network.Layers.Count == 0)
            throw new ArgumentException($"{network.NetworkName} does not describe its layers, so its input shape is unknown: give channels, height and width.", nameof(network));
        LayerShape input = network.Layers[0].Input;
        if (input.IsVector)
            throw new ArgumentException($"{network.NetworkName} takes vectors of {input.C}, not images.", nameof(network));
        return Read(root, input.C, input.H, input.W, options);
    }

    /// <summary>
    /// Reads every image under <paramref name="root"/> into <paramref name="channels"/> (1: grey, 3: RGB) ×
    /// <paramref name="height"/> × <paramref name="width"/> floats, byte / 255 then (x − mean) / std if asked.
    /// Files whose name starts with '.' (.DS_Store) are skipped. Everything else is checked: a missing root, a
    /// root without class folders, a file beside the class folders, a folder inside one, an empty class folder,
    /// another extension, a file that does not decode, and in strict mode an image of another size or channel count
    /// each throw an <see cref="ImageFolderException"/> naming the file or folder; nothing is returned half loaded.
    /// The tree is listed and checked before any image is decoded. EXIF orientation is not applied (as PIL,
    /// torchvision and TensorFlow's decoders leave it); 16-bit PNGs are reduced to 8 bits, palettes expanded.
    /// </summary>
    public static ImageFolderSet Read(string root, int channels, int height, int width, ImageFolderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        options ??= ImageFolderOptions.Default;
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "Image folders give 1 (grey) or 3 (RGB) channels.");
        if (height < 1 || width < 1)
            throw new ArgumentOutOfRangeException(nameof(height), $"The image size {height}×{width} must be at least 1×1.");
        if (!Enum.IsDefined(options.Resize))
            throw new ArgumentOutOfRangeException(nameof(options), options.Resize, "Unknown resize method.");
        var (scale, offset) = Normalisation(options, channels);

        var (classNames, files, labels) = List(root, options);
        if (options.ShuffleSeed is ulong seed)
        {
            var order = new int[files.Length];
            for (int i = 0; i < order.Length; i++)
                order[i] = i;
            var random = new ShuffleRandom(seed);
            random.Shuffle(order);
            var shuffledFiles = new string[files.Length];
            var shuffledLabels = new int[labels.Length];
            for (int i = 0; i < order.Length; i++)
            {
                shuffledFiles[i] = files[order[i]];
                shuffledLabels[i] = labels[order[i]];
            }

            (files, labels) = (shuffledFiles, shuffledLabels);
        }

        int size = checked(channels * height * width);
        var images = new float[checked(files.Length * size)];
        var decoder = new Decoder(channels, height, width, options);
        for (int n = 0; n < files.Length; n++)
        {
            Span<float> image = images.AsSpan(n * size, size);
            decoder.Decode(files[n], image);
            for (int c = 0; c < channels; c++)
            {
                if (scale[c] == 1 && offset[c] == 0)
                    continue;
                foreach (ref float v in image.Slice(c * height * width, height * width))
                    v = v * scale[c] + offset[c];
            }
        }

        return new ImageFolderSet(images, labels, files, classNames, channels, height, width, decoder.Resized, decoder.Converted);
    }

    /// <summary>
    /// Whether <paramref name="directory"/> looks like an image folder: it has a (non-hidden) subfolder holding a
    /// file with one of the <see cref="Extensions"/>. Reads only names; <see cref="Read(string, int, int, int, ImageFolderOptions?)"/> checks the rest.
    /// </summary>
    public static bool IsImageFolder(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory))
            return false;
        foreach (string folder in Directory.EnumerateDirectories(directory))
        {
            if (Hidden(folder))
                continue;
            foreach (string file in Directory.EnumerateFiles(folder))
            {
                if (!Hidden(file) && KnownExtension(file))
                    return true;
            }
        }

        return false;
    }

    /// <summary>(x / 255 − mean) / std as x' · scale + offset on x' = x / 255.</summary>
    private static (float[] Scale, float[] Offset) Normalisation(ImageFolderOptions options, int channels)
    {
        float[]? mean = options.Mean, std = options.Std;
        if ((mean is null) != (std is null))
            throw new ArgumentException("Give both the means and the standard deviations, or neither.", nameof(options));
        if (mean is not null && (mean.Length != channels || std!.Length != channels))
            throw new ArgumentException($"The means and standard deviations need {channels} values each (one a channel), not {mean.Length} and {std!.Length}.", nameof(options));
        var scale = new float[channels];
        var offset = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            float m = mean?[c] ?? 0f, s = std?[c] ?? 1f;
            if (!float.IsFinite(m))
                throw new ArgumentOutOfRangeException(nameof(options), m, "A mean must be finite.");
            if (!(s > 0) || !float.IsFinite(s))
                throw new ArgumentOutOfRangeException(nameof(options), s, "A standard deviation must be finite and greater than 0.");
            scale[c] = 1f / s;
            offset[c] = -m / s;
        }

        return (scale, offset);
    }

    private static bool Hidden(string path) => System.IO.Path.GetFileName(path).StartsWith('.');

    private static bool KnownExtension(string path)
    {
        string extension = System.IO.Path.GetExtension(path);
        foreach (string known in Extensions)
        {
            if (extension.Equals(known, StringComparison.OrdinalIgnoreCase))
                return true;
        }

        return false;
    }

    /// <summary>The class names, then every image file with its label, checked before anything is decoded.</summary>
    private static (string[] Classes, string[] Files, int[] Labels) List(string root, ImageFolderOptions options)
    {
        string full = System.IO.Path.GetFullPath(root);
        if (!Directory.Exists(full))
            throw new ImageFolderException(full, File.Exists(full) ? $"is a file, not an image folder ({Expected})." : "the image folder does not exist.");

        var classFolders = new List<string>();
        try
        {
            foreach (string entry in Directory.EnumerateFileSystemEntries(full))
            {
                if (Hidden(entry))
                    continue;
                if (!Directory.Exists(entry))
                    throw new ImageFolderException(entry, $"a file beside the class folders: an image folder holds only folders, one a class ({Expected}).");
                classFolders.Add(entry);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageFolderException(full, $"cannot be listed: {e.Message}", e);
        }

        if (classFolders.Count == 0)
            throw new ImageFolderException(full, $"holds no class folders; an image folder is {Expected}.");
        classFolders.Sort(StringComparer.Ordinal);
        var names = new string[classFolders.Count];
        for (int i = 0; i < names.Length; i++)
            names[i] = System.IO.Path.GetFileName(classFolders[i]);
        if (options.Classes is { } expected)
            CheckClasses(full, names, expected);

        var files = new List<string>();
        var labels = new List<int>();
        for (int label = 0; label < classFolders.Count; label++)
        {
            string folder = classFolders[label];
            var found = new List<string>();
            try
            {
                foreach (string entry in Directory.EnumerateFileSystemEntries(folder))
                {
                    if (Hidden(entry))
                        continue;
                    if (Directory.Exists(entry))
                    {
                        throw new ImageFolderException(entry,
                            $"a folder inside class folder '{names[label]}': an image folder is {Expected} (is '{full}' a folder of image folders, such as train/ and test/?).");
                    }

                    if (!KnownExtension(entry))
                    {
                        string extension = System.IO.Path.GetExtension(entry);
                        throw new ImageFolderException(entry,
                            $"{(extension.Length == 0 ? "no extension" : $"unknown extension '{extension}'")}: image folders hold {string.Join(", ", Extensions)} files only.");
                    }

                    found.Add(entry);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ImageFolderException(folder, $"cannot be listed: {e.Message}", e);
            }

            if (found.Count == 0)
                throw new ImageFolderException(folder, $"class folder '{names[label]}' is empty: it holds no {string.Join(", ", Extensions)} image.");
            found.Sort(StringComparer.Ordinal);
            files.AddRange(found);
            for (int i = 0; i < found.Count; i++)
                labels.Add(label);
        }

        return (names, files.ToArray(), labels.ToArray());
    }

    private static void CheckClasses(string root, string[] found, IReadOnlyList<string> expected)
    {
        var present = new HashSet<string>(found, StringComparer.Ordinal);
        var wanted = new HashSet<string>(expected, StringComparer.Ordinal);
        var missing = new List<string>();
        var extra = new List<string>();
        foreach (string name in expected)
        {
            if (!present.Contains(name))
                missing.Add(name);
        }

        foreach (string name in found)
        {
            if (!wanted.Contains(name))
                extra.Add(name);
        }

        if (missing.Count > 0 || extra.Count > 0)
        {
            string message = "the class folders differ from the classes expected:"
                             + (missing.Count > 0 ? $" missing {string.Join(", ", missing)};" : "")
                             + (extra.Count > 0 ? $" not expected {string.Join(", ", extra)};" : "");
            throw new ImageFolderException(root, message.TrimEnd(';') + ".");
        }

        for (int i = 0; i < found.Length; i++)
        {
            if (!string.Equals(found[i], expected[i], StringComparison.Ordinal))
            {
                throw new ImageFolderException(root,
                    $"the classes expected are not in ordinal order ('{expected[i]}' is class {i}, but the folders sort as {string.Join(", ", found)}), so the labels would differ.");
            }
        }
    }

    /// <summary>Decodes one file at a time into the network's layout, reusing its buffers and the resampling weights.</summary>
    private sealed class Decoder(int channels, int height, int width, ImageFolderOptions options)
    {
        private float[] _planes = Array.Empty<float>();
        private float[] _scratch = Array.Empty<float>();
        private (int Height, int Width, ImageResampling.AxisWeights Rows, ImageResampling.AxisWeights Columns)? _weights;

        public int Resized { get; private set; }
        public int Converted { get; private set; }

        public void Decode(string file, Span<float> image)
        {
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ImageFolderException(file, $"cannot be read: {e.Message}", e);
            }

            if (bytes.Length == 0)
                throw new ImageFolderException(file, "the file is empty.");
            // stb_image pads a JPEG or BMP that ends early with zeros and reports success: refuse those first.
            if (ImageCompleteness.Truncation(bytes) is string truncated)
                throw new ImageFolderException(file, $"truncated: {truncated}; the file was not completely written or copied.");
            ImageResult decoded;
            try
            {
                lock (DecoderLock)
                    decoded = ImageResult.FromMemory(bytes, ColorComponents.Default);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                throw new ImageFolderException(file, $"cannot be decoded as {Format(file)}: {Reason(e)}; the file is damaged or not an image of that kind.", e);
            }

            int w = decoded.Width, h = decoded.Height, stored = (int)decoded.Comp;
            if (decoded.Data is null || w < 1 || h < 1 || stored is < 1 or > 4 || decoded.Data.Length < (long)w * h * stored)
                throw new ImageFolderException(file, $"cannot be decoded as {Format(file)}: the decoder returned no complete image.");
            if (stored != channels)
            {
                if (!options.ConvertChannels)
                {
                    throw new ImageFolderException(file,
                        $"{Describe(stored)} ({stored} channel{(stored == 1 ? "" : "s")}), but the network takes {channels} ({Describe(channels)}); conversion is off (ImageFolderOptions.ConvertChannels).");
                }

                Converted++;
            }

            bool resize = h != height || w != width;
            if (resize && options.Resize == ImageResize.None)
            {
                throw new ImageFolderException(file,
                    $"{w}×{h} pixels (width × height), but the network takes {width}×{height}; resizing is off (ImageFolderOptions.Resize).");
            }

            // Planar floats in [0, 1] at the file's size, in the network's channels; resized into the image if needed.
            int area = checked(w * h);
            Span<float> planes;
            if (resize)
            {
                if (_planes.Length < checked(channels * area))
                    _planes = new float[channels * area];
                planes = _planes.AsSpan(0, channels * area);
            }
            else
            {
                planes = image;
            }

            ToPlanes(decoded.Data, stored, area, planes);
            if (!resize)
                return;

            Resized++;
            if (_weights is not { } weights || weights.Height != h || weights.Width != w)
            {
                weights = (h, w, ImageResampling.Weights(options.Resize, h, height), ImageResampling.Weights(options.Resize, w, width));
                _weights = weights;
            }

            if (_scratch.Length < checked(h * width))
                _scratch = new float[h * width];
            for (int c = 0; c < channels; c++)
            {
                ImageResampling.Resample(planes.Slice(c * area, area), h, w, image.Slice(c * height * width, height * width),
                    weights.Rows, weights.Columns, _scratch);
            }
        }

        /// <summary>Interleaved bytes (grey, grey + alpha, RGB or RGBA) to planar floats in the network's channels.</summary>
        private void ToPlanes(byte[] data, int stored, int area, Span<float> planes)
        {
            // Divided, not multiplied by 1/255, so that a byte gives the float Cifar10 and Idx give.
            bool colour = stored >= 3;
            for (int i = 0; i < area; i++)
            {
                int p = i * stored;
                if (channels == 1)
                {
                    planes[i] = colour
                        ? (0.299f * data[p] + 0.587f * data[p + 1] + 0.114f * data[p + 2]) / 255f
                        : data[p] / 255f;
                }
                else if (colour)
                {
                    planes[i] = data[p] / 255f;
                    planes[area + i] = data[p + 1] / 255f;
                    planes[2 * area + i] = data[p + 2] / 255f;
                }
                else
                {
                    float grey = data[p] / 255f;
                    planes[i] = grey;
                    planes[area + i] = grey;
                    planes[2 * area + i] = grey;
                }
            }
        }

        private static string Describe(int components) => components switch
        {
            1 => "grey",
            2 => "grey with alpha",
            3 => "RGB",
            _ => "RGBA",
        };

        private static string Format(string file) => System.IO.Path.GetExtension(file).ToLowerInvariant() switch
        {
            ".png" => "PNG",
            ".bmp" => "BMP",
            _ => "JPEG",
        };

        private static string Reason(Exception e) =>
            string.IsNullOrWhiteSpace(e.Message) ? e.GetType().Name : string.Create(CultureInfo.InvariantCulture, $"{e.Message.TrimEnd('.')}");
    }
}
