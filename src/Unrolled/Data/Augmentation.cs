using System;

namespace Unrolled.Data;

/// <summary>
/// Random crop after zero padding and random horizontal flip (the usual CIFAR-10 augmentation), applied in
/// place to a batch of channels × height × width images. Each sample's crop and flip depend only on
/// (seed, epoch, position in the epoch), so a run — and a resumed run — is the same for a seed.
/// </summary>
public sealed class ImageAugmentation
{
    private readonly float[] _scratch;

    public ImageAugmentation(int channels, int height, int width, int padding = 4, bool horizontalFlip = true, ulong seed = 0)
    {
        if (channels < 1 || height < 1 || width < 1)
            throw new ArgumentOutOfRangeException(nameof(channels), "The image must have at least 1 channel, row and column.");
        if (padding < 0)
            throw new ArgumentOutOfRangeException(nameof(padding), padding, "The padding cannot be negative.");
        Channels = channels;
        Height = height;
        Width = width;
        Padding = padding;
        HorizontalFlip = horizontalFlip;
        Seed = seed;
        _scratch = new float[checked(channels * height * width)];
    }

    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int Padding { get; }
    public bool HorizontalFlip { get; }
    public ulong Seed { get; }

    public int SampleSize => _scratch.Length;

    /// <summary>Augments each sample of <paramref name="batch"/>; sample i is the epoch's sample number firstSample + i.</summary>
    public void Apply(Span<float> batch, int epoch, long firstSample)
    {
        int size = SampleSize;
        if (batch.Length % size != 0)
            throw new ArgumentException($"The batch holds {batch.Length} floats, not a whole number of {Channels}×{Height}×{Width} images.", nameof(batch));
        int count = batch.Length / size;
        for (int i = 0; i < count; i++)
        {
            var random = new ShuffleRandom(Seed ^ ((ulong)epoch * 0xD1B54A32D192ED03UL) ^ ((ulong)(firstSample + i) * 0x9E3779B97F4A7C15UL));
            random.NextUInt64();
            int dy = random.Next(2 * Padding + 1) - Padding;
            int dx = random.Next(2 * Padding + 1) - Padding;
            bool flip = HorizontalFlip && (random.NextUInt64() & 1) != 0;
            Transform(batch.Slice(i * size, size), dy, dx, flip);
        }
    }

    /// <summary>
    /// out[c, y, x] = in[c, y + dy, x' + dx] (zero outside), x' = W − 1 − x when flipped: the crop at offset
    /// (Padding + dy, Padding + dx) of the zero-padded image, then the flip.
    /// </summary>
    public void Transform(Span<float> image, int dy, int dx, bool flip)
    {
        image.CopyTo(_scratch);
        int h = Height, w = Width;
        for (int c = 0; c < Channels; c++)
        {
            ReadOnlySpan<float> source = _scratch.AsSpan(c * h * w, h * w);
            Span<float> destination = image.Slice(c * h * w, h * w);
            for (int y = 0; y < h; y++)
            {
                int sy = y + dy;
                for (int x = 0; x < w; x++)
                {
                    int sx = (flip ? w - 1 - x : x) + dx;
                    destination[y * w + x] = (uint)sy < (uint)h && (uint)sx < (uint)w ? source[sy * w + sx] : 0f;
                }
            }
        }
    }
}
