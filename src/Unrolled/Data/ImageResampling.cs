using System;

namespace Unrolled.Data;

/// <summary>How <see cref="ImageFolder"/> fits an image of another size to the network's input.</summary>
public enum ImageResize
{
    /// <summary>
    /// Strict: every image must already have the network's height and width; another size is an
    /// <see cref="ImageFolderException"/> naming the file.
    /// </summary>
    None,

    /// <summary>
    /// Bilinear interpolation with half-pixel centres and edge clamping, without antialiasing: PyTorch's
    /// <c>F.interpolate(mode="bilinear", align_corners=False)</c> and TensorFlow 2's <c>tf.image.resize(method="bilinear")</c>,
    /// the default of Keras' <c>image_dataset_from_directory</c>. Good for enlarging and for shrinking by less than 2×;
    /// shrinking by more skips source pixels (aliasing): use <see cref="Area"/> then.
    /// </summary>
    Bilinear,

    /// <summary>
    /// Area averaging: each output pixel is the mean of the source pixels it covers, each weighted by the fraction
    /// of it that lies inside (a box filter; for a whole factor exactly PyTorch's <c>adaptive_avg_pool2d</c>). Every
    /// source pixel counts, so it does not alias when shrinking; when enlarging it repeats pixels (blends at the seams).
    /// </summary>
    Area,
}

/// <summary>Separable resampling of one float plane, with the weights of each axis computed once per size pair.</summary>
internal static class ImageResampling
{
    /// <summary>The source indices and weights of every output index along one axis; output o uses entries [Start[o], Start[o + 1]).</summary>
    internal sealed class AxisWeights
    {
        public AxisWeights(int[] start, int[] index, float[] weight)
        {
            Start = start;
            Index = index;
            Weight = weight;
        }

        public int[] Start { get; }
        public int[] Index { get; }
        public float[] Weight { get; }
    }

    public static AxisWeights Weights(ImageResize method, int input, int output) => method switch
    {
        ImageResize.Bilinear => Bilinear(input, output),
        ImageResize.Area => Area(input, output),
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "No resampling for this method."),
    };

    /// <summary>Source position (o + ½)·in/out − ½, clamped to [0, in − 1]; the two neighbours weighted by distance.</summary>
    private static AxisWeights Bilinear(int input, int output)
    {
        var start = new int[output + 1];
        var index = new int[2 * output];
        var weight = new float[2 * output];
        double scale = input / (double)output;
        int n = 0;
        for (int o = 0; o < output; o++)
        {
            start[o] = n;
            double source = Math.Clamp((o + 0.5) * scale - 0.5, 0, input - 1);
            int i0 = (int)source;
            int i1 = Math.Min(i0 + 1, input - 1);
            float lambda = (float)(source - i0);
            index[n] = i0;
            weight[n++] = 1 - lambda;
            if (i1 != i0 && lambda != 0)
            {
                index[n] = i1;
                weight[n++] = lambda;
            }
        }

        start[output] = n;
        return new AxisWeights(start, index[..n], weight[..n]);
    }

    /// <summary>Output o covers the source interval [o·in/out, (o + 1)·in/out); each source pixel weighs its overlap over the interval's length.</summary>
    private static AxisWeights Area(int input, int output)
    {
        var start = new int[output + 1];
        var index = new System.Collections.Generic.List<int>(input + output);
        var weight = new System.Collections.Generic.List<float>(input + output);
        for (int o = 0; o < output; o++)
        {
            start[o] = index.Count;
            // Exact in integers: the interval is [o·in, (o + 1)·in) in units of 1/out of a source pixel.
            long lo = (long)o * input, hi = (long)(o + 1) * input;
            int first = (int)(lo / output), last = (int)((hi - 1) / output);
            for (int i = first; i <= last; i++)
            {
                long overlap = Math.Min(hi, (long)(i + 1) * output) - Math.Max(lo, (long)i * output);
                if (overlap <= 0)
                    continue;
                index.Add(i);
                weight.Add((float)(overlap / (double)input));
            }
        }

        start[output] = index.Count;
        return new AxisWeights(start, index.ToArray(), weight.ToArray());
    }

    /// <summary>
    /// Resamples <paramref name="source"/> (<paramref name="sourceHeight"/> × <paramref name="sourceWidth"/>) into
    /// <paramref name="destination"/> (rows × columns of the weights): horizontally into <paramref name="scratch"/>
    /// (sourceHeight × width floats), then vertically.
    /// </summary>
    public static void Resample(ReadOnlySpan<float> source, int sourceHeight, int sourceWidth, Span<float> destination,
        AxisWeights rows, AxisWeights columns, Span<float> scratch)
    {
        int height = rows.Start.Length - 1, width = columns.Start.Length - 1;
        for (int y = 0; y < sourceHeight; y++)
        {
            ReadOnlySpan<float> line = source.Slice(y * sourceWidth, sourceWidth);
            Span<float> into = scratch.Slice(y * width, width);
            for (int x = 0; x < width; x++)
            {
                float sum = 0;
                for (int k = columns.Start[x]; k < columns.Start[x + 1]; k++)
                    sum += line[columns.Index[k]] * columns.Weight[k];
                into[x] = sum;
            }
        }

        for (int y = 0; y < height; y++)
        {
            Span<float> into = destination.Slice(y * width, width);
            into.Clear();
            for (int k = rows.Start[y]; k < rows.Start[y + 1]; k++)
            {
                ReadOnlySpan<float> line = scratch.Slice(rows.Index[k] * width, width);
                float w = rows.Weight[k];
                for (int x = 0; x < width; x++)
                    into[x] += line[x] * w;
            }
        }
    }
}
