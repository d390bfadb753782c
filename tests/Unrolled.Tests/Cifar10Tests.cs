using System;
using System.IO;
using System.Linq;
using Unrolled.Data;
using Xunit;

namespace Unrolled.Tests;

public sealed class Cifar10Tests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("unrolled-cifar-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>Records whose pixel byte at plane offset i of channel c is (label + 3c + i) mod 256.</summary>
    private string Write(string name, params byte[] labels)
    {
        var bytes = new byte[labels.Length * Cifar10.RecordSize];
        for (int r = 0; r < labels.Length; r++)
        {
            bytes[r * Cifar10.RecordSize] = labels[r];
            for (int c = 0; c < 3; c++)
            {
                for (int i = 0; i < 1024; i++)
                    bytes[r * Cifar10.RecordSize + 1 + c * 1024 + i] = (byte)(labels[r] + 3 * c + i);
            }
        }

        string path = Path.Combine(_directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Reads_records_in_file_order_as_planes_scaled_to_unit_range()
    {
        string a = Write("data_batch_1.bin", 3, 0, 9), b = Write("data_batch_2.bin", 7, 1);
        Cifar10Set set = Cifar10.Read(new[] { a, b });
        Assert.Equal(5, set.Count);
        Assert.Equal(new[] { 3, 0, 9, 7, 1 }, set.Labels);
        Assert.Equal(5 * 3072, set.Images.Length);
        for (int n = 0; n < 5; n++)
        {
            for (int c = 0; c < 3; c++)
            {
                foreach (int i in new[] { 0, 1, 31, 32, 500, 1023 })
                    Assert.Equal((byte)(set.Labels[n] + 3 * c + i) / 255f, set.Images[n * 3072 + c * 1024 + i]);
            }
        }

        Assert.Equal(1f, set.Images.Max());
        Assert.Equal(0f, set.Images.Min());
    }

    [Fact]
    public void Normalises_per_channel()
    {
        string a = Write("test_batch.bin", 2, 5);
        float[] mean = { 0.5f, 0.25f, 0.1f }, std = { 0.5f, 0.25f, 0.2f };
        Cifar10Set plain = Cifar10.Read(new[] { a });
        Cifar10Set normal = Cifar10.Read(new[] { a }, mean, std);
        for (int k = 0; k < plain.Images.Length; k++)
        {
            int c = k % 3072 / 1024;
            Assert.Equal((plain.Images[k] - mean[c]) / std[c], normal.Images[k], 4);
        }

        Assert.Throws<ArgumentException>(() => Cifar10.Read(new[] { a }, mean, null));
    }

    [Fact]
    public void Load_reads_the_five_training_batches_and_the_test_batch()
    {
        for (int f = 1; f <= 5; f++)
            Write($"data_batch_{f}.bin", (byte)f, (byte)(f - 1));
        Write("test_batch.bin", 8);
        var (train, test) = Cifar10.Load(_directory, normalize: true);
        Assert.Equal(new[] { 1, 0, 2, 1, 3, 2, 4, 3, 5, 4 }, train.Labels);
        Assert.Equal(new[] { 8 }, test.Labels);
        Assert.Equal((8 / 255f - Cifar10.TrainMean[0]) / Cifar10.TrainStd[0], test.Images[0], 5);
    }

    [Fact]
    public void A_truncated_record_is_an_error_naming_the_file()
    {
        string good = Write("data_batch_1.bin", 1, 2);
        string bad = Write("data_batch_2.bin", 3, 4);
        byte[] bytes = File.ReadAllBytes(bad);
        File.WriteAllBytes(bad, bytes.AsSpan(0, bytes.Length - 100).ToArray());
        var error = Assert.Throws<Cifar10FormatException>(() => Cifar10.Read(new[] { good, bad }));
        Assert.Equal(bad, error.FileName);
        Assert.Contains(bad, error.Message);
        Assert.Contains("record 2 is truncated", error.Message);
    }

    [Fact]
    public void Bad_labels_empty_and_missing_files_are_errors_naming_the_file()
    {
        string bad = Write("data_batch_1.bin", 1, 10);
        var label = Assert.Throws<Cifar10FormatException>(() => Cifar10.Read(new[] { bad }));
        Assert.Equal(bad, label.FileName);
        Assert.Contains("record 2 has label 10", label.Message);

        string empty = Path.Combine(_directory, "empty.bin");
        File.WriteAllBytes(empty, Array.Empty<byte>());
        Assert.Equal(empty, Assert.Throws<Cifar10FormatException>(() => Cifar10.Read(new[] { empty })).FileName);

        string missing = Path.Combine(_directory, "missing.bin");
        Assert.Equal(missing, Assert.Throws<Cifar10FormatException>(() => Cifar10.Read(new[] { missing })).FileName);
    }

    [Fact]
    public void Crop_and_flip_move_pixels_as_torchvision_does()
    {
        var augmentation = new ImageAugmentation(2, 3, 4, padding: 1);
        float[] image = Enumerable.Range(1, 24).Select(v => (float)v).ToArray();
        float[] shifted = (float[])image.Clone();
        augmentation.Transform(shifted, dy: 1, dx: -1, flip: false);
        // out[c, y, x] = in[c, y + 1, x − 1], 0 outside.
        Assert.Equal(new float[] { 0, 5, 6, 7, 0, 9, 10, 11, 0, 0, 0, 0 }, shifted[..12]);
        Assert.Equal(new float[] { 0, 17, 18, 19, 0, 21, 22, 23, 0, 0, 0, 0 }, shifted[12..]);
        float[] flipped = (float[])image.Clone();
        augmentation.Transform(flipped, 0, 0, flip: true);
        Assert.Equal(new float[] { 4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9 }, flipped[..12]);
        float[] same = (float[])image.Clone();
        augmentation.Transform(same, 0, 0, false);
        Assert.Equal(image, same);
    }

    [Fact]
    public void Augmentation_is_deterministic_for_a_seed()
    {
        float[] batch = Enumerable.Range(0, 8 * 3 * 8 * 8).Select(v => (float)(v % 97)).ToArray();
        float[] Run(ulong seed, int epoch)
        {
            float[] copy = (float[])batch.Clone();
            new ImageAugmentation(3, 8, 8, padding: 2, seed: seed).Apply(copy, epoch, firstSample: 16);
            return copy;
        }

        Assert.Equal(Run(1, 0), Run(1, 0));
        Assert.NotEqual(Run(1, 0), Run(2, 0));
        Assert.NotEqual(Run(1, 0), Run(1, 1));
        Assert.NotEqual(batch, Run(1, 0));
    }

    [Fact]
    public void Batches_gather_samples_in_order_with_a_short_last_batch()
    {
        float[] inputs = Enumerable.Range(0, 10 * 2).Select(v => (float)v).ToArray();
        int[] labels = Enumerable.Range(100, 10).ToArray();
        var batches = new Batches(sampleSize: 2, batchSize: 4, sampleCount: 10);
        Assert.Equal(3, batches.Count(dropLast: false));
        Assert.Equal(2, batches.Count(dropLast: true));
        var random = new ShuffleRandom(5);
        batches.Shuffle(ref random);
        Assert.Equal(Enumerable.Range(0, 10), batches.Order.OrderBy(v => v));
        int count = batches.Fill(inputs, labels, 2, out Span<float> x, out Span<int> y);
        Assert.Equal(2, count);
        Assert.Equal(new[] { labels[batches.Order[8]], labels[batches.Order[9]] }, y.ToArray());
        Assert.Equal(new[] { 2f * batches.Order[8], 2f * batches.Order[8] + 1, 2f * batches.Order[9], 2f * batches.Order[9] + 1 }, x.ToArray());

        var again = new ShuffleRandom(5);
        var copy = new Batches(2, 4, 10);
        copy.Shuffle(ref again);
        Assert.Equal(batches.Order, copy.Order);
        Assert.Equal(random.State, again.State);
    }
}
