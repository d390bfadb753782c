using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit;

namespace Unrolled.Tests;

public class WeightFileTests
{
    // ---------------------------------------------------------------------------------------------
    // A hand-made network: conv1 (weight, bias), bn1 (weight, bias, running stats, counter) and,
    // optionally, dense1 (weight, bias). Only its tensor table and spans matter here.
    // ---------------------------------------------------------------------------------------------

    private sealed class FakeNet : INetwork
    {
        private readonly float[] _parameters;
        private readonly float[] _gradients;
        private readonly float[] _buffers = new float[4];
        private readonly long[] _counters = new long[1];

        /// <param name="withDense">Whether the network has dense1 (a file with or without it is then missing or extra tensors).</param>
        public FakeNet(bool withDense = true)
        {
            var tensors = new List<TensorInfo>
            {
                new("conv1.weight", new[] { 2, 1, 2, 2 }, TensorKind.Parameter, 0, 8),
                new("conv1.bias", new[] { 2 }, TensorKind.Parameter, 8, 2),
                new("bn1.weight", new[] { 2 }, TensorKind.Parameter, 10, 2),
                new("bn1.bias", new[] { 2 }, TensorKind.Parameter, 12, 2),
                new("bn1.running_mean", new[] { 2 }, TensorKind.Buffer, 0, 2),
                new("bn1.running_var", new[] { 2 }, TensorKind.Buffer, 2, 2),
                new("bn1.num_batches_tracked", Array.Empty<int>(), TensorKind.Counter, 0, 1),
            };
            int parameterCount = 14;
            if (withDense)
            {
                tensors.Add(new("dense1.weight", new[] { 3, 2 }, TensorKind.Parameter, 14, 6));
                tensors.Add(new("dense1.bias", new[] { 3 }, TensorKind.Parameter, 20, 3));
                parameterCount += 9;
            }
            Tensors = tensors;
            _parameters = new float[parameterCount];
            _gradients = new float[parameterCount];
        }

        /// <summary>Fills every span with distinct values, including awkward bit patterns, derived from <paramref name="seed"/>.</summary>
        public FakeNet Fill(int seed)
        {
            var random = new Random(seed);
            for (int i = 0; i < _parameters.Length; i++)
                _parameters[i] = (float)(random.NextDouble() * 2 - 1);
            _parameters[0] = -0f;
            _parameters[1] = float.Epsilon;                                          // subnormal
            _parameters[2] = BitConverter.Int32BitsToSingle(0x7FC0_1234);           // NaN with a payload
            _parameters[3] = float.NegativeInfinity;
            for (int i = 0; i < _buffers.Length; i++)
                _buffers[i] = (float)random.NextDouble() + 0.5f;
            _counters[0] = 0x0123_4567_89AB_CDEF + seed;
            return this;
        }

        public string NetworkName => "FakeNet";
        public int InputSize => 4;
        public int OutputSize => 3;
        public int ParameterCount => _parameters.Length;
        public Loss Loss => Loss.CrossEntropy;
        public Span<float> Parameters => _parameters;
        public Span<float> Gradients => _gradients;
        public Span<float> Buffers => _buffers;
        public Span<long> Counters => _counters;
        public IReadOnlyList<TensorInfo> Tensors { get; }
        public int MaxDegreeOfParallelism { get; set; } = 1;
        public void Forward(ReadOnlySpan<float> input, Span<float> output) => throw new NotSupportedException();
        public float ComputeGradients(ReadOnlySpan<float> input, ReadOnlySpan<int> labels) => throw new NotSupportedException();
        public float ComputeGradients(ReadOnlySpan<float> input, ReadOnlySpan<float> targets) => throw new NotSupportedException();

        /// <summary>All the network's state as bytes, for bit-exact comparisons.</summary>
        public byte[] Snapshot() =>
            MemoryMarshal.AsBytes(Parameters).ToArray()
                .Concat(MemoryMarshal.AsBytes(Buffers).ToArray())
                .Concat(MemoryMarshal.AsBytes(Counters).ToArray())
                .ToArray();
    }

    /// <summary>Hands out data a few bytes at a time and cannot seek, like a network or pipe stream.</summary>
    private sealed class TrickleStream(byte[] data) : Stream
    {
        private int _position;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = Math.Min(Math.Min(count, 7), data.Length - _position);
            Array.Copy(data, _position, buffer, offset, n);
            _position += n;
            return n;
        }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private static byte[] Save(INetwork net)
    {
        using var stream = new MemoryStream();
        net.Save(stream);
        return stream.ToArray();
    }

    /// <summary>Assembles a file from a header text (padded with spaces to 8 bytes) and data.</summary>
    private static byte[] Assemble(string header, byte[] data)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        int padded = (json.Length + 7) / 8 * 8;
        var file = new byte[8 + padded + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)padded);
        json.CopyTo(file, 8);
        file.AsSpan(8 + json.Length, padded - json.Length).Fill((byte)' ');
        data.CopyTo(file, 8 + padded);
        return file;
    }

    /// <summary>Splits a file into its parsed header and its data section.</summary>
    private static (JsonObject Header, byte[] Data) Split(byte[] file)
    {
        int length = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(file));
        var header = JsonNode.Parse(file.AsSpan(8, length))!.AsObject();
        return (header, file[(8 + length)..]);
    }

    /// <summary>A valid file of a filled FakeNet with its header edited.</summary>
    private static byte[] EditedFile(Action<JsonObject> edit)
    {
        var (header, data) = Split(Save(new FakeNet().Fill(1)));
        edit(header);
        return Assemble(header.ToJsonString(), data);
    }

    /// <summary>
    /// Loads <paramref name="file"/> into a filled network, from a seekable and from an unseekable stream,
    /// and checks that it is refused with a message containing every fragment, and that the network is untouched.
    /// </summary>
    private static WeightFileException AssertRejected(byte[] file, Func<FakeNet>? makeNet = null, params string[] fragments)
    {
        WeightFileException? first = null;
        foreach (bool seekable in new[] { true, false })
        {
            FakeNet net = (makeNet ?? (() => new FakeNet()))().Fill(42);
            byte[] before = net.Snapshot();
            Stream stream = seekable ? new MemoryStream(file, writable: false) : new TrickleStream(file);

            var e = Assert.Throws<WeightFileException>(() => net.Load(stream));

            foreach (string fragment in fragments)
            {
                Assert.Contains(fragment, e.Message);
                Assert.Contains(e.Problems, p => p.Contains(fragment, StringComparison.Ordinal));
            }
            foreach (string problem in e.Problems)
                Assert.Contains(problem, e.Message);
            Assert.Equal(before, net.Snapshot());
            first ??= e;
        }
        return first!;
    }

    // ---------------------------------------------------------------------------------------------
    // Saving and loading
    // ---------------------------------------------------------------------------------------------

    [Fact]
    public void RoundTripThroughAStreamIsBitIdentical()
    {
        var source = new FakeNet().Fill(7);
        byte[] file = Save(source);

        var target = new FakeNet();
        target.Load(new MemoryStream(file));
        Assert.Equal(source.Snapshot(), target.Snapshot());

        var unseekable = new FakeNet();
        unseekable.Load(new TrickleStream(file));
        Assert.Equal(source.Snapshot(), unseekable.Snapshot());
    }

    [Fact]
    public void RoundTripThroughAFileIsBitIdenticalAndLeavesNoTemporaryFile()
    {
        string directory = Directory.CreateTempSubdirectory("unrolled-weights-").FullName;
        try
        {
            string path = Path.Combine(directory, "fake.safetensors");
            File.WriteAllText(path, "an older file to be replaced");
            var source = new FakeNet().Fill(3);
            source.Save(path);

            var target = new FakeNet();
            target.Load(path);
            Assert.Equal(source.Snapshot(), target.Snapshot());
            Assert.Equal(new[] { "fake.safetensors" }, Directory.GetFiles(directory).Select(Path.GetFileName));
            Assert.Equal(Save(source), File.ReadAllBytes(path));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void HeaderIsWhatSafetensorsWrites()
    {
        var net = new FakeNet().Fill(5);
        byte[] file = Save(net);

        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(file);
        Assert.Equal(0UL, (8 + length) % 8);                       // data aligned to 8 bytes
        string text = Encoding.UTF8.GetString(file, 8, (int)length);
        Assert.StartsWith("{\"__metadata__\":{\"format\":\"pt\",\"network\":\"FakeNet\"},", text);
        Assert.Matches(@"^[^ ]*\} {0,7}$", text);                 // compact JSON, then only padding

        using var document = JsonDocument.Parse(text);
        JsonProperty[] properties = document.RootElement.EnumerateObject().ToArray();
        Assert.Equal("__metadata__", properties[0].Name);
        Assert.Equal(2, properties[0].Value.EnumerateObject().Count());

        // The 8-byte counter first, then the floats, each group by name; back to back from 0.
        string[] expectedOrder =
        {
            "bn1.num_batches_tracked", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.weight",
            "conv1.bias", "conv1.weight", "dense1.bias", "dense1.weight",
        };
        Assert.Equal(expectedOrder, properties.Skip(1).Select(p => p.Name));

        byte[] data = file[(8 + (int)length)..];
        long offset = 0;
        foreach (JsonProperty property in properties.Skip(1))
        {
            TensorInfo tensor = net.Tensors.Single(t => t.Name == property.Name);
            JsonElement entry = property.Value;
            Assert.Equal(new[] { "dtype", "shape", "data_offsets" }, entry.EnumerateObject().Select(p => p.Name));
            Assert.Equal(tensor.Kind == TensorKind.Counter ? "I64" : "F32", entry.GetProperty("dtype").GetString());
            Assert.Equal(tensor.Shape, entry.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
            long[] offsets = entry.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            Assert.Equal(new[] { offset, offset + tensor.Length * (tensor.Kind == TensorKind.Counter ? 8 : 4) }, offsets);

            // The bytes at those offsets are the tensor's values, little-endian.
            byte[] expected = tensor.Kind switch
            {
                TensorKind.Parameter => MemoryMarshal.AsBytes(net.Parameters.Slice(tensor.Offset, tensor.Length)).ToArray(),
                TensorKind.Buffer => MemoryMarshal.AsBytes(net.Buffers.Slice(tensor.Offset, tensor.Length)).ToArray(),
                _ => MemoryMarshal.AsBytes(net.Counters.Slice(tensor.Offset, tensor.Length)).ToArray(),
            };
            Assert.Equal(expected, data[(int)offsets[0]..(int)offsets[1]]);
            offset = offsets[1];
        }
        Assert.Equal(offset, data.Length);
    }

    [Fact]
    public void LoadsAFileWrittenTheWayPythonWritesIt()
    {
        // Written byte by byte: the header lists tensors in one order, the data holds them in another,
        // the metadata has keys of its own and the header has JSON spacing and padding.
        float[] convWeight = { 1, -2, 3, -4, 5, -6, 7, -8 };
        float[] convBias = { 0.5f, -0.25f };
        float[] bnWeight = { 1, 1 }, bnBias = { 0, 0.125f };
        float[] mean = { 0.1f, 0.2f }, variance = { 0.9f, 1.1f };
        float[] denseWeight = { 6, 5, 4, 3, 2, 1 }, denseBias = { -1, 0, 1 };
        const long counter = 938;

        var data = new MemoryStream();
        var offsets = new Dictionary<string, (long Begin, long End)>();
        var word = new byte[8];
        void Put(string name, float[] values)
        {
            long begin = data.Position;
            foreach (float v in values)
            {
                BinaryPrimitives.WriteSingleLittleEndian(word, v);
                data.Write(word, 0, 4);
            }
            offsets[name] = (begin, data.Position);
        }
        Put("dense1.bias", denseBias);
        Put("bn1.running_var", variance);
        Put("conv1.weight", convWeight);
        long counterBegin = data.Position;
        BinaryPrimitives.WriteInt64LittleEndian(word, counter);
        data.Write(word, 0, 8);
        offsets["bn1.num_batches_tracked"] = (counterBegin, data.Position);
        Put("bn1.weight", bnWeight);
        Put("dense1.weight", denseWeight);
        Put("conv1.bias", convBias);
        Put("bn1.running_mean", mean);
        Put("bn1.bias", bnBias);

        string Entry(string name, string dtype, string shape) =>
            $"\"{name}\": {{\"dtype\": \"{dtype}\", \"shape\": {shape}, \"data_offsets\": [{offsets[name].Begin}, {offsets[name].End}]}}";
        string header = "{" + string.Join(", ",
            Entry("conv1.weight", "F32", "[2, 1, 2, 2]"),
            "\"__metadata__\": {\"format\": \"pt\", \"producer\": \"hand\"}",
            Entry("bn1.num_batches_tracked", "I64", "[]"),
            Entry("conv1.bias", "F32", "[2]"),
            Entry("dense1.weight", "F32", "[3, 2]"),
            Entry("bn1.running_mean", "F32", "[2]"),
            Entry("bn1.weight", "F32", "[2]"),
            Entry("bn1.bias", "F32", "[2]"),
            Entry("dense1.bias", "F32", "[3]"),
            Entry("bn1.running_var", "F32", "[2]")) + "}";
        byte[] file = Assemble(header, data.ToArray());

        var net = new FakeNet().Fill(9);
        net.Load(new MemoryStream(file));

        Assert.Equal(convWeight.Concat(convBias).Concat(bnWeight).Concat(bnBias).Concat(denseWeight).Concat(denseBias), net.Parameters.ToArray());
        Assert.Equal(mean.Concat(variance), net.Buffers.ToArray());
        Assert.Equal(counter, net.Counters[0]);
    }

    // ---------------------------------------------------------------------------------------------
    // Rejections: each throws one exception listing the problems and leaves the network unchanged
    // ---------------------------------------------------------------------------------------------

    [Fact]
    public void RejectsMissingTensors()
    {
        byte[] file = Save(new FakeNet(withDense: false).Fill(1));
        var e = AssertRejected(file, () => new FakeNet(), "Missing tensor 'dense1.weight'", "Missing tensor 'dense1.bias'");
        Assert.Equal(2, e.Problems.Count);
    }

    [Fact]
    public void RejectsUnexpectedTensors()
    {
        byte[] file = Save(new FakeNet().Fill(1));
        var e = AssertRejected(file, () => new FakeNet(withDense: false), "Unexpected tensor 'dense1.weight'", "Unexpected tensor 'dense1.bias'");
        Assert.Equal(2, e.Problems.Count);
    }

    [Fact]
    public void RejectsAWrongShape()
    {
        byte[] file = EditedFile(h => h["dense1.weight"]!["shape"] = new JsonArray(2, 3));
        var e = AssertRejected(file, () => new FakeNet(), "'dense1.weight': shape [2, 3] in the file, but the network expects [3, 2]");
        Assert.Single(e.Problems);
    }

    [Fact]
    public void RejectsAWrongDType()
    {
        // F64 has the counter's 8 bytes, so the dtype is the only problem.
        byte[] file = EditedFile(h => h["bn1.num_batches_tracked"]!["dtype"] = "F64");
        var e = AssertRejected(file, null, "'bn1.num_batches_tracked': dtype F64 in the file, but the network's counter is I64");
        Assert.Single(e.Problems);
    }

    [Fact]
    public void ListsEveryProblemOfAFileWithSeveral()
    {
        byte[] file = EditedFile(h =>
        {
            h["conv1.bias"]!["dtype"] = "I32";
            h["conv1.weight"]!["shape"] = new JsonArray(8);
        });
        var e = AssertRejected(file, null,
            "'conv1.bias': dtype I32 in the file, but the network's parameter is F32",
            "'conv1.weight': shape [8] in the file, but the network expects [2, 1, 2, 2]");
        Assert.Equal(2, e.Problems.Count);
        Assert.Equal(3, e.Message.Split('\n').Length);   // a heading, then one line per problem
    }

    /// <summary>
    /// Fuzz: 2,000 damaged copies of a valid file (random bytes flipped, cut short at a random length, random bytes
    /// inserted or overwritten, the header's length field replaced). Each load either succeeds, and then the
    /// network holds what the file says whatever it held before, or throws WeightFileException and
    /// leaves the network as it was; nothing else is thrown, and every load finishes.
    /// </summary>
    [Fact]
    public void DamagedFilesLoadExactlyOrAreRejectedWithTheNetworkUntouched()
    {
        byte[] valid = Save(new FakeNet().Fill(1));
        var random = new Random(2026_11_22);
        int loaded = 0, rejected = 0;
        for (int trial = 0; trial < 2000; trial++)
        {
            byte[] file = (byte[])valid.Clone();
            switch (trial % 5)
            {
                case 0: // flip 1..4 random bits anywhere
                    for (int k = random.Next(1, 5); k > 0; k--) file[random.Next(file.Length)] ^= (byte)(1 << random.Next(8));
                    break;
                case 1: // cut short
                    file = file[..random.Next(file.Length)];
                    break;
                case 2: // overwrite a run of random bytes
                {
                    int at = random.Next(file.Length), n = Math.Min(random.Next(1, 16), file.Length - at);
                    random.NextBytes(file.AsSpan(at, n));
                    break;
                }
                case 3: // insert random bytes
                {
                    int at = random.Next(file.Length + 1);
                    byte[] extra = new byte[random.Next(1, 16)];
                    random.NextBytes(extra);
                    file = file[..at].Concat(extra).Concat(file[at..]).ToArray();
                    break;
                }
                default: // a lying header length: negative, huge, or off by a little
                {
                    long length = BitConverter.ToInt64(file, 0);
                    long lie = (trial / 5 % 4) switch { 0 => -random.Next(1, 1000), 1 => long.MaxValue - random.Next(1000), 2 => length + random.Next(-8, 9), _ => random.NextInt64() };
                    BitConverter.TryWriteBytes(file.AsSpan(0, 8), lie);
                    break;
                }
            }

            FakeNet net = new FakeNet().Fill(42);
            byte[] before = net.Snapshot();
            try
            {
                net.Load(new MemoryStream(file, writable: false));
                loaded++;
                // Accepted (a change inside the tensor data, or one the header tolerates): every tensor was
                // replaced, so a network that held other values before ends up bit-identical.
                FakeNet other = new FakeNet().Fill(7);
                other.Load(new MemoryStream(file, writable: false));
                Assert.Equal(other.Snapshot(), net.Snapshot());
            }
            catch (WeightFileException)
            {
                rejected++;
                Assert.Equal(before, net.Snapshot());
            }
        }
        Assert.True(loaded > 0 && rejected > 0, $"loaded {loaded}, rejected {rejected}: the fuzz should reach both outcomes");
    }

    [Fact]
    public void RejectsTruncatedData()
    {
        byte[] file = Save(new FakeNet().Fill(1));
        var e = AssertRejected(file[..^5], null, "truncated");
        Assert.Contains("dense1.weight", e.Message);     // the last tensor in the file is the one cut short
    }

    [Fact]
    public void RejectsDataAfterTheLastTensor()
    {
        byte[] file = Save(new FakeNet().Fill(1));
        AssertRejected(file.Concat(new byte[3]).ToArray(), null, "3 bytes after the end of the last tensor");
    }

    [Fact]
    public void RejectsATruncatedHeader()
    {
        byte[] file = Save(new FakeNet().Fill(1));
        int length = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        AssertRejected(file[..(8 + length / 2)], null, $"header length {length}");  // "goes beyond the end" or "is truncated"
        AssertRejected(file[..5], null, "truncated");
        AssertRejected(Array.Empty<byte>(), null, "truncated");
    }

    [Theory]
    [InlineData(1UL << 60, "1152921504606846976")]
    [InlineData(ulong.MaxValue, "-1")]
    [InlineData(0x8000_0000_0000_0000UL, "-9223372036854775808")]
    [InlineData(100_000_001UL, "100000001")]
    public void RejectsAHugeHeaderLengthWithoutAllocatingIt(ulong length, string shown)
    {
        byte[] file = Save(new FakeNet().Fill(1));
        BinaryPrimitives.WriteUInt64LittleEndian(file, length);
        var e = AssertRejected(file, null, shown, "exceeds the limit");
        Assert.Single(e.Problems);
    }

    [Fact]
    public void RejectsAHeaderLongerThanTheFile()
    {
        byte[] file = Save(new FakeNet().Fill(1));
        BinaryPrimitives.WriteUInt64LittleEndian(file, 50_000_000);
        // Seekable: known from the length; unseekable: found when the stream ends.
        AssertRejected(file, null, "50000000");
    }

    [Theory]
    [InlineData("this is not json")]
    [InlineData("{\"conv1.weight\": {\"dtype\": \"F32\",")]
    [InlineData("[1, 2, 3]")]
    [InlineData("{}")]
    public void RejectsAHeaderThatIsNotAJsonObjectOfTensors(string header)
    {
        byte[] file = Assemble(header, Array.Empty<byte>());
        var e = AssertRejected(file, null);
        if (header == "{}")
            Assert.Equal(9, e.Problems.Count(p => p.StartsWith("Missing tensor", StringComparison.Ordinal)));
        else
            Assert.Single(e.Problems);
    }

    [Fact]
    public void RejectsAHeaderThatIsNotUtf8()
    {
        byte[] file = Assemble("{\"__metadata__\": {\"a\": \"xx\"}}", Array.Empty<byte>());
        int at = Array.IndexOf(file, (byte)'x');
        file[at] = 0xC3; // a lead byte ...
        file[at + 1] = 0x28; // ... followed by a byte that cannot continue it
        AssertRejected(file, null, "not valid UTF-8");
    }

    [Fact]
    public void RejectsOverlappingOffsets()
    {
        // bn1.bias takes bn1.running_mean's bytes (the same length), leaving its own unclaimed.
        byte[] file = EditedFile(h => h["bn1.bias"]!["data_offsets"] = h["bn1.running_mean"]!["data_offsets"]!.DeepClone());
        var e = AssertRejected(file, null, "overlap", "belong to no tensor");
        Assert.Contains(e.Problems, p => p.Contains("bn1.bias") && p.Contains("bn1.running_mean") && p.Contains("overlap"));
    }

    [Fact]
    public void RejectsOffsetsOutOfRange()
    {
        byte[] file = EditedFile(h => h["dense1.weight"]!["data_offsets"] = new JsonArray(1000, 1024));
        var e = AssertRejected(file, null, "dense1.weight");
        Assert.Contains(e.Problems, p => p.Contains("'dense1.weight': data_offsets [1000, 1024] go beyond the end of the data section"));
    }

    [Fact]
    public void RejectsOffsetsThatDisagreeWithTheShape()
    {
        byte[] file = EditedFile(h =>
        {
            long begin = h["conv1.weight"]!["data_offsets"]![0]!.GetValue<long>();
            h["conv1.weight"]!["data_offsets"] = new JsonArray(begin, begin + 28);
        });
        AssertRejected(file, null, "'conv1.weight': data_offsets", "span 28 bytes", "needs 32");
    }

    [Fact]
    public void RejectsMalformedEntries()
    {
        byte[] file = EditedFile(h =>
        {
            h["conv1.weight"]!.AsObject().Remove("dtype");
            h["conv1.bias"]!["shape"] = "2";
            h["bn1.weight"]!["data_offsets"] = new JsonArray(3);
            h["bn1.bias"]!["data_offsets"] = new JsonArray(-1, 7);
            h["bn1.running_mean"]!["extra"] = true;
            h["bn1.running_var"]!["dtype"] = "Q9";
            h["dense1.bias"]!["shape"] = new JsonArray(1.5);
            h["__metadata__"]!["count"] = 3;
        });
        var e = AssertRejected(file, null,
            "'conv1.weight': dtype is missing",
            "'conv1.bias': shape is a JSON string",
            "'bn1.weight': data_offsets must hold 2 numbers",
            "'bn1.bias': data_offsets holds -1",
            "'bn1.running_mean': unknown key 'extra'",
            "'bn1.running_var': unknown dtype 'Q9'",
            "'dense1.bias': shape holds 1.5",
            "'__metadata__' entry 'count' is a JSON number");
        Assert.True(e.Problems.Count >= 8);
    }

    [Fact]
    public void IgnoresUnknownMetadataKeysAndAcceptsAFileWithoutMetadata()
    {
        var source = new FakeNet().Fill(11);
        var (header, data) = Split(Save(source));
        header["__metadata__"]!["anything"] = "at all";
        var target = new FakeNet();
        target.Load(new MemoryStream(Assemble(header.ToJsonString(), data)));
        Assert.Equal(source.Snapshot(), target.Snapshot());

        header.Remove("__metadata__");
        target = new FakeNet();
        target.Load(new MemoryStream(Assemble(header.ToJsonString(), data)));
        Assert.Equal(source.Snapshot(), target.Snapshot());
    }

    [Fact]
    public void LoadingAMissingPathThrowsFileNotFound()
    {
        var net = new FakeNet();
        Assert.Throws<FileNotFoundException>(() => net.Load(Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N") + ".safetensors")));
    }

    [Fact]
    public void TheExceptionNamesTheFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"unrolled-{Guid.NewGuid():N}.safetensors");
        try
        {
            File.WriteAllBytes(path, Save(new FakeNet(withDense: false).Fill(1)));
            var e = Assert.Throws<WeightFileException>(() => new FakeNet().Load(path));
            Assert.Equal(path, e.FileName);
            Assert.Contains(path, e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
