using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;

namespace Unrolled;

/// <summary>
/// Thrown when a weight file cannot be loaded into a network. The network is left unchanged.
/// <see cref="Problems"/> lists every problem found, and the message repeats them, one per line.
/// </summary>
public sealed class WeightFileException : Exception
{
    /// <summary>Creates an exception for the given problems found in <paramref name="fileName"/> (null for a stream).</summary>
    public WeightFileException(string? fileName, IReadOnlyList<string> problems)
        : base(FormatMessage(fileName, problems))
    {
        FileName = fileName;
        Problems = problems;
    }

    /// <summary>Creates an exception with a single problem.</summary>
    public WeightFileException(string message) : this(null, new[] { message }) { }

    /// <summary>Creates an exception with a single problem and the exception that caused it.</summary>
    public WeightFileException(string message, Exception innerException)
        : base(FormatMessage(null, new[] { message }), innerException)
    {
        Problems = new[] { message };
    }

    /// <summary>The path of the weight file, or null when it was read from a stream.</summary>
    public string? FileName { get; }

    /// <summary>Every problem found, one sentence each.</summary>
    public IReadOnlyList<string> Problems { get; }

    private static string FormatMessage(string? fileName, IReadOnlyList<string> problems)
    {
        var message = new StringBuilder();
        message.Append(fileName is null ? "The weight file" : $"The weight file '{fileName}'")
               .Append(" cannot be loaded (")
               .Append(problems.Count == 1 ? "1 problem" : $"{problems.Count} problems")
               .Append("); the network is unchanged:");
        foreach (string problem in problems)
            message.Append('\n').Append("  - ").Append(problem);
        return message.ToString();
    }
}

/// <summary>
/// Saves and loads a network's tensors as a safetensors file, the format PyTorch's
/// <c>safetensors.torch.save_file</c>/<c>load_file</c> use:
/// <list type="number">
/// <item>an unsigned 64-bit little-endian length N;</item>
/// <item>N bytes of UTF-8 JSON, <c>{"__metadata__": {string: string}, name: {"dtype", "shape", "data_offsets": [begin, end]}, …}</c>,
/// padded with spaces so that the data starts at a multiple of 8 bytes;</item>
/// <item>the tensors' raw little-endian values, offsets counted from the start of this data section.</item>
/// </list>
/// Tensor names are the PyTorch state_dict keys (see <see cref="INetwork.Tensors"/>), so files move
/// between the project and PyTorch in both directions.
/// </summary>
public static class WeightFile
{
    /// <summary>The largest header accepted, the same limit as the reference implementation.</summary>
    public const int MaxHeaderLength = 100_000_000;

    private const string MetadataKey = "__metadata__";

    /// <summary>
    /// Saves every tensor of <paramref name="network"/> to <paramref name="path"/>. The file is written
    /// under a temporary name and then moved into place, so an existing file is never left half-written.
    /// </summary>
    public static void Save(this INetwork network, string path)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(path);

        string fullPath = Path.GetFullPath(path);
        string temporary = Path.Combine(Path.GetDirectoryName(fullPath)!, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                Save(network, stream);
            File.Move(temporary, fullPath, overwrite: true);
        }
        finally
        {
            // Only there if writing or moving failed.
            if (File.Exists(temporary))
                File.Delete(temporary);
        }
    }

    /// <summary>
    /// Writes every tensor of <paramref name="network"/> to <paramref name="stream"/> in the safetensors format:
    /// parameters and buffers as F32, counters as I64 scalars, and the metadata
    /// <c>{"format": "pt", "network": NetworkName}</c>.
    /// </summary>
    public static void Save(this INetwork network, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(stream);
        CheckNetworkTable(network);

        // The reference implementation orders the data by element size (largest first, which keeps
        // every tensor aligned to its element size) and then by name; the header lists the tensors
        // in the same order after the metadata. Doing the same gives byte-identical files.
        TensorInfo[] ordered = network.Tensors
            .OrderByDescending(t => ElementSize(t.Kind))
            .ThenBy(t => t.Name, StringComparer.Ordinal)
            .ToArray();

        byte[] header = BuildHeader(network.NetworkName, ordered);

        Span<byte> lengthPrefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(lengthPrefix, (ulong)header.Length);
        stream.Write(lengthPrefix);
        stream.Write(header);
        foreach (TensorInfo tensor in ordered)
            WriteTensorData(network, tensor, stream);
        stream.Flush();
    }

    /// <summary>
    /// Loads the tensors of the safetensors file at <paramref name="path"/> into <paramref name="network"/>.
    /// The file must hold exactly the network's tensors, with their shapes and dtypes (like PyTorch's
    /// <c>load_state_dict(strict=True)</c>). Everything is checked before anything is copied: on any
    /// problem a <see cref="WeightFileException"/> listing all of them is thrown and the network is unchanged.
    /// </summary>
    public static void Load(this INetwork network, string path)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read,
                                          bufferSize: 1 << 16, FileOptions.SequentialScan);
        Load(network, stream, path);
    }

    /// <summary>
    /// Loads a safetensors file from <paramref name="stream"/> (which need not be seekable) into
    /// <paramref name="network"/>; see <see cref="Load(INetwork, string)"/>. The stream is read to its end.
    /// </summary>
    public static void Load(this INetwork network, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(stream);
        Load(network, stream, fileName: null);
    }

    // ---------------------------------------------------------------------------------------------
    // Saving
    // ---------------------------------------------------------------------------------------------

    /// <summary>Writes the JSON header for tensors stored back to back in the given order, padded to 8 bytes (the ONNX
    /// importer writes its weight files with it too). Only each tensor's name, shape, kind and length are read.</summary>
    internal static byte[] BuildHeader(string networkName, IReadOnlyList<TensorInfo> ordered)
    {
        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps names readable; it only matters for HTML, never for a weight file.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();

            json.WriteStartObject(MetadataKey);
            json.WriteString("format", "pt");
            json.WriteString("network", networkName);
            json.WriteEndObject();

            long offset = 0;
            foreach (TensorInfo tensor in ordered)
            {
                long end = offset + (long)tensor.Length * ElementSize(tensor.Kind);
                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", tensor.Kind == TensorKind.Counter ? "I64" : "F32");
                json.WriteStartArray("shape");
                foreach (int dimension in tensor.Shape)
                    json.WriteNumberValue(dimension);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(end);
                json.WriteEndArray();
                json.WriteEndObject();
                offset = end;
            }

            json.WriteEndObject();
        }

        int padding = (8 - buffer.WrittenCount % 8) % 8;
        buffer.GetSpan(padding)[..padding].Fill((byte)' ');
        buffer.Advance(padding);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes one tensor's values as little-endian bytes.</summary>
    private static void WriteTensorData(INetwork network, TensorInfo tensor, Stream stream)
    {
        if (tensor.Kind == TensorKind.Counter)
        {
            ReadOnlySpan<long> values = network.Counters.Slice(tensor.Offset, tensor.Length);
            if (BitConverter.IsLittleEndian)
            {
                stream.Write(MemoryMarshal.AsBytes(values));
                return;
            }
            long[] swapped = new long[values.Length];
            BinaryPrimitives.ReverseEndianness(values, swapped);
            stream.Write(MemoryMarshal.AsBytes(swapped.AsSpan()));
        }
        else
        {
            Span<float> source = tensor.Kind == TensorKind.Parameter ? network.Parameters : network.Buffers;
            ReadOnlySpan<float> values = source.Slice(tensor.Offset, tensor.Length);
            if (BitConverter.IsLittleEndian)
            {
                stream.Write(MemoryMarshal.AsBytes(values));
                return;
            }
            int[] swapped = new int[values.Length];
            BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<float, int>(values), swapped);
            stream.Write(MemoryMarshal.AsBytes(swapped.AsSpan()));
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Loading
    // ---------------------------------------------------------------------------------------------

    /// <summary>One tensor entry of a file's header, as far as it could be read.</summary>
    private sealed class Entry
    {
        public required string Name { get; init; }
        public string? DType { get; set; }
        public long[]? Shape { get; set; }
        public long Begin { get; set; } = -1;
        public long End { get; set; } = -1;
        /// <summary>The network tensor this entry fills, once the entry has been found valid for it.</summary>
        public TensorInfo? Target { get; set; }
        /// <summary>Whether data_offsets were read as a well-formed pair.</summary>
        public bool HasUsableOffsets => Begin >= 0 && End >= Begin;
    }

    private static void Load(INetwork network, Stream stream, string? fileName)
    {
        CheckNetworkTable(network);
        var problems = new List<string>();

        // The bytes left in the stream, when it can tell; used to reject impossible lengths before reading.
        long? available = stream.CanSeek ? stream.Length - stream.Position : null;

        // 1. The header length.
        Span<byte> lengthPrefix = stackalloc byte[8];
        int prefixRead = stream.ReadAtLeast(lengthPrefix, lengthPrefix.Length, throwOnEndOfStream: false);
        if (prefixRead < lengthPrefix.Length)
            throw Fail(fileName, $"The file is truncated: it has {prefixRead} bytes, fewer than the 8 of the header length.");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthPrefix);
        if (headerLength > MaxHeaderLength)
        {
            string signed = (long)headerLength < 0 ? $" (negative as a signed number: {(long)headerLength})" : "";
            throw Fail(fileName, $"The header length {headerLength}{signed} exceeds the limit of {MaxHeaderLength} bytes; this is not a safetensors file or it is corrupt.");
        }
        if (headerLength < 2)
            throw Fail(fileName, $"The header length {headerLength} is too small for a JSON object (at least 2 bytes).");
        if (available is long total && (long)headerLength > total - 8)
            throw Fail(fileName, $"The header length {headerLength} goes beyond the end of the file, which has {Math.Max(total - 8, 0)} bytes after the header length.");

        // 2. The header itself. Below the cap, but still read in growing steps so that a truncated
        // stream that claims a long header does not cost the whole allocation.
        byte[] header = ReadUpTo(stream, (int)headerLength, out int headerRead);
        if (headerRead < (int)headerLength)
            throw Fail(fileName, $"The header is truncated: the header length {headerLength} is more than the {headerRead} bytes left in the file.");

        List<Entry>? entries = ParseHeader(header.AsMemory(0, headerRead), problems);
        if (entries is null)
            throw Fail(fileName, problems);

        long? dataLength = available is long all ? all - 8 - (long)headerLength : null;

        // 3. Compare the entries with the network's tensors, and the offsets with each other.
        MatchEntries(network, entries, problems);
        CheckLayout(entries, dataLength, problems);

        // 4. Read the data into copies of the network's spans, so that nothing changes until all is known good.
        float[] parameters = network.Parameters.ToArray();
        float[] buffers = network.Buffers.ToArray();
        long[] counters = network.Counters.ToArray();
        ReadData(stream, entries, dataLength, parameters, buffers, counters, problems);

        if (problems.Count > 0)
            throw Fail(fileName, problems);

        // 5. Everything checked: commit.
        parameters.CopyTo(network.Parameters);
        buffers.CopyTo(network.Buffers);
        counters.CopyTo(network.Counters);
    }

    /// <summary>
    /// Parses the header into entries, reporting every malformed part. Returns null if the header is
    /// not a JSON object at all, in which case nothing else can be checked.
    /// </summary>
    private static List<Entry>? ParseHeader(ReadOnlyMemory<byte> header, List<string> problems)
    {
        // Checked up front: the JSON reader only notices bad UTF-8 inside strings when they are decoded.
        if (!Utf8.IsValid(header.Span))
        {
            problems.Add("The header is not valid UTF-8 text, so it cannot be JSON.");
            return null;
        }

        JsonDocument document;
        try
        {
            // The spaces of the padding are JSON whitespace, which the parser skips.
            document = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            problems.Add($"The header is not valid JSON: {e.Message}");
            return null;
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"The header is a JSON {Describe(document.RootElement.ValueKind)}, not an object.");
                return null;
            }

            var entries = new List<Entry>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                {
                    problems.Add($"'{property.Name}' appears more than once in the header.");
                    continue;
                }
                if (property.Name == MetadataKey)
                    CheckMetadata(property.Value, problems);
                else
                    entries.Add(ParseEntry(property.Name, property.Value, problems));
            }
            return entries;
        }
    }

    /// <summary>The metadata must be an object of strings; its keys are free and ignored.</summary>
    private static void CheckMetadata(JsonElement metadata, List<string> problems)
    {
        if (metadata.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"'{MetadataKey}' is a JSON {Describe(metadata.ValueKind)}, not an object of strings.");
            return;
        }
        foreach (JsonProperty item in metadata.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                problems.Add($"'{MetadataKey}' entry '{item.Name}' is a JSON {Describe(item.Value.ValueKind)}, not a string.");
        }
    }

    /// <summary>Reads one tensor entry: exactly the keys dtype (string), shape (array of
    /// non-negative integers) and data_offsets (two non-negative integers, begin ≤ end).</summary>
    private static Entry ParseEntry(string name, JsonElement value, List<string> problems)
    {
        var entry = new Entry { Name = name };
        if (value.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"'{name}': the entry is a JSON {Describe(value.ValueKind)}, not an object with dtype, shape and data_offsets.");
            return entry;
        }

        bool hasDType = false, hasShape = false, hasOffsets = false;
        foreach (JsonProperty field in value.EnumerateObject())
        {
            switch (field.Name)
            {
                case "dtype" when !hasDType:
                    hasDType = true;
                    if (field.Value.ValueKind == JsonValueKind.String)
                        entry.DType = field.Value.GetString();
                    else
                        problems.Add($"'{name}': dtype is a JSON {Describe(field.Value.ValueKind)}, not a string.");
                    break;

                case "shape" when !hasShape:
                    hasShape = true;
                    entry.Shape = ReadIntegers(field.Value, out string? shapeError);
                    if (shapeError is not null)
                        problems.Add($"'{name}': shape {shapeError}.");
                    break;

                case "data_offsets" when !hasOffsets:
                    hasOffsets = true;
                    long[]? offsets = ReadIntegers(field.Value, out string? offsetsError);
                    if (offsetsError is not null)
                        problems.Add($"'{name}': data_offsets {offsetsError}.");
                    else if (offsets!.Length != 2)
                        problems.Add($"'{name}': data_offsets must hold 2 numbers (begin and end), not {offsets.Length}.");
                    else if (offsets[1] < offsets[0])
                        problems.Add($"'{name}': data_offsets [{offsets[0]}, {offsets[1]}] end before they begin.");
                    else
                        (entry.Begin, entry.End) = (offsets[0], offsets[1]);
                    break;

                case "dtype" or "shape" or "data_offsets":
                    problems.Add($"'{name}': '{field.Name}' appears more than once.");
                    break;

                default:
                    problems.Add($"'{name}': unknown key '{field.Name}' (only dtype, shape and data_offsets are allowed).");
                    break;
            }
        }

        if (!hasDType) problems.Add($"'{name}': dtype is missing.");
        if (!hasShape) problems.Add($"'{name}': shape is missing.");
        if (!hasOffsets) problems.Add($"'{name}': data_offsets is missing.");
        return entry;
    }

    /// <summary>Reads a JSON array of non-negative 64-bit integers; on failure returns null and says why.</summary>
    private static long[]? ReadIntegers(JsonElement array, out string? error)
    {
        error = null;
        if (array.ValueKind != JsonValueKind.Array)
        {
            error = $"is a JSON {Describe(array.ValueKind)}, not an array of integers";
            return null;
        }
        var values = new long[array.GetArrayLength()];
        int i = 0;
        foreach (JsonElement item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long value) || value < 0)
            {
                error = $"holds {item.GetRawText()}, which is not a non-negative integer";
                return null;
            }
            values[i++] = value;
        }
        return values;
    }

    /// <summary>
    /// Checks the file's names against the network's (both ways), and each matching entry's dtype,
    /// shape and byte length. An entry that passes everything gets its <see cref="Entry.Target"/>.
    /// </summary>
    private static void MatchEntries(INetwork network, List<Entry> entries, List<string> problems)
    {
        var byName = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (TensorInfo tensor in network.Tensors)
            byName.Add(tensor.Name, tensor); // Unique: checked by CheckNetworkTable.

        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (Entry entry in entries)
        {
            present.Add(entry.Name);
            int? elementSize = entry.DType is null ? null : DTypeSize(entry.DType);
            if (entry.DType is not null && elementSize is null)
                problems.Add($"'{entry.Name}': unknown dtype '{entry.DType}'.");

            // The byte length must agree with the shape and dtype, whatever the tensor.
            long? elements = entry.Shape is null ? null : Product(entry.Shape);
            if (entry.Shape is not null && elements is null)
                problems.Add($"'{entry.Name}': shape {FormatShape(entry.Shape)} has too many elements.");
            bool lengthAgrees = false;
            if (elements is long count && elementSize is int size && entry.HasUsableOffsets)
            {
                long bytes = entry.End - entry.Begin;
                Int128 needed = (Int128)count * size; // Cannot overflow, unlike a long.
                lengthAgrees = bytes == needed;
                if (!lengthAgrees)
                    problems.Add($"'{entry.Name}': data_offsets [{entry.Begin}, {entry.End}] span {bytes} bytes, but shape {FormatShape(entry.Shape!)} of {entry.DType} needs {needed}.");
            }

            if (!byName.TryGetValue(entry.Name, out TensorInfo? tensor))
            {
                problems.Add($"Unexpected tensor '{entry.Name}': the network {network.NetworkName} has no tensor of that name.");
                continue;
            }

            string expectedDType = tensor.Kind == TensorKind.Counter ? "I64" : "F32";
            bool dtypeMatches = entry.DType == expectedDType;
            if (elementSize is not null && !dtypeMatches) // An unknown dtype was reported above.
                problems.Add($"'{entry.Name}': dtype {entry.DType} in the file, but the network's {KindName(tensor.Kind)} is {expectedDType}.");

            bool shapeMatches = entry.Shape is not null && entry.Shape.SequenceEqual(tensor.Shape.Select(d => (long)d));
            if (entry.Shape is not null && !shapeMatches)
                problems.Add($"'{entry.Name}': shape {FormatShape(entry.Shape)} in the file, but the network expects {FormatShape(tensor.Shape.Select(d => (long)d))}.");

            if (dtypeMatches && shapeMatches && lengthAgrees)
                entry.Target = tensor;
        }

        foreach (TensorInfo tensor in network.Tensors)
        {
            if (!present.Contains(tensor.Name))
                problems.Add($"Missing tensor '{tensor.Name}' ({KindName(tensor.Kind)}, shape {FormatShape(tensor.Shape.Select(d => (long)d))}): the file has no entry of that name.");
        }
    }

    /// <summary>
    /// Checks that the tensors tile the data section as the reference implementation requires: in
    /// offset order they start at 0, each begins where the previous ends (no overlap, no gap), and
    /// none reaches beyond the data section when its length is known. An entry that overlaps another
    /// loses its target, so that it is never read.
    /// </summary>
    private static void CheckLayout(List<Entry> entries, long? dataLength, List<string> problems)
    {
        // 'reach' is where the tensors seen so far end; 'furthest' is the one that ends there.
        long reach = 0;
        Entry? furthest = null;
        foreach (Entry entry in entries.Where(e => e.HasUsableOffsets).OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (entry.Begin < reach)
            {
                // Begin ≥ 0 = the initial reach, so some earlier entry set the reach.
                problems.Add($"'{entry.Name}': data_offsets [{entry.Begin}, {entry.End}] overlap '{furthest!.Name}' at [{furthest.Begin}, {furthest.End}].");
                entry.Target = null;
                furthest.Target = null;
            }
            else if (entry.Begin > reach)
            {
                problems.Add($"Bytes {reach} to {entry.Begin} of the data section belong to no tensor (a gap before '{entry.Name}').");
            }

            if (dataLength is long length && entry.End > length)
            {
                problems.Add($"'{entry.Name}': data_offsets [{entry.Begin}, {entry.End}] go beyond the end of the data section, which has {length} bytes (the file is truncated or the offsets are wrong).");
                entry.Target = null;
            }

            if (entry.End >= reach)
            {
                reach = entry.End;
                furthest = entry;
            }
        }
    }

    /// <summary>
    /// Reads the data section front to back (so that unseekable streams work), copying each valid
    /// entry into the staging arrays and skipping the rest, and reports a truncated or over-long data section.
    /// </summary>
    private static void ReadData(Stream stream, List<Entry> entries, long? dataLength,
                                 float[] parameters, float[] buffers, long[] counters, List<string> problems)
    {
        long needed = 0;
        foreach (Entry entry in entries)
        {
            if (entry.HasUsableOffsets)
                needed = Math.Max(needed, entry.End);
        }

        // Every entry beyond a known end was reported by CheckLayout already.
        if (dataLength is long known && known < needed)
            return;

        // Entries to read, in file order; an overlapping or invalid entry has no target and is skipped
        // over. Once a problem is known, nothing will be copied, so only the length is checked.
        IEnumerable<Entry> toRead = problems.Count == 0
            ? entries.Where(e => e.Target is not null).OrderBy(e => e.Begin)
            : Enumerable.Empty<Entry>();
        long position = 0;
        foreach (Entry entry in toRead)
        {
            long skipped = Skip(stream, entry.Begin - position);
            position += skipped;
            if (position < entry.Begin)
                break;

            TensorInfo tensor = entry.Target!;
            Span<byte> destination = tensor.Kind switch
            {
                TensorKind.Parameter => MemoryMarshal.AsBytes(parameters.AsSpan(tensor.Offset, tensor.Length)),
                TensorKind.Buffer => MemoryMarshal.AsBytes(buffers.AsSpan(tensor.Offset, tensor.Length)),
                _ => MemoryMarshal.AsBytes(counters.AsSpan(tensor.Offset, tensor.Length)),
            };
            int read = stream.ReadAtLeast(destination, destination.Length, throwOnEndOfStream: false);
            position += read;
            if (read < destination.Length)
                break;

            if (!BitConverter.IsLittleEndian)
                SwapToNative(tensor, parameters, buffers, counters);
        }

        // Whatever the header says lies beyond the last valid tensor must be there too.
        if (position < needed)
            position += Skip(stream, needed - position);
        if (position < needed)
        {
            problems.Add($"The data section is truncated: the header needs {needed} bytes but the file has {position}.");
            return;
        }

        // Like the reference implementation, refuse data the header does not account for.
        long extra = dataLength is long length ? length - needed : Skip(stream, long.MaxValue);
        if (extra > 0)
            problems.Add($"The file has {extra} bytes after the end of the last tensor's data (byte {needed} of the data section) that no header entry describes.");
    }

    /// <summary>Reorders bytes of a just-read tensor on a big-endian machine.</summary>
    private static void SwapToNative(TensorInfo tensor, float[] parameters, float[] buffers, long[] counters)
    {
        switch (tensor.Kind)
        {
            case TensorKind.Counter:
                Span<long> longs = counters.AsSpan(tensor.Offset, tensor.Length);
                BinaryPrimitives.ReverseEndianness(longs, longs);
                break;
            default:
                float[] source = tensor.Kind == TensorKind.Parameter ? parameters : buffers;
                Span<int> ints = MemoryMarshal.Cast<float, int>(source.AsSpan(tensor.Offset, tensor.Length));
                BinaryPrimitives.ReverseEndianness(ints, ints);
                break;
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Reads up to <paramref name="length"/> bytes, growing the buffer only as data actually arrives,
    /// so a short stream that announces a long block never causes the full allocation.
    /// </summary>
    private static byte[] ReadUpTo(Stream stream, int length, out int read)
    {
        byte[] buffer = new byte[Math.Min(length, 1 << 16)];
        read = 0;
        while (read < length)
        {
            if (read == buffer.Length)
                Array.Resize(ref buffer, (int)Math.Min(length, 2L * buffer.Length));
            int n = stream.Read(buffer, read, buffer.Length - read);
            if (n == 0)
                break;
            read += n;
        }
        return buffer;
    }

    /// <summary>Skips up to <paramref name="count"/> bytes; returns how many there were before the end of the stream.</summary>
    private static long Skip(Stream stream, long count)
    {
        if (count <= 0)
            return 0;
        if (stream.CanSeek)
        {
            long step = Math.Min(count, Math.Max(0, stream.Length - stream.Position));
            stream.Seek(step, SeekOrigin.Current);
            return step;
        }

        byte[] scratch = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            long skipped = 0;
            while (skipped < count)
            {
                int n = stream.Read(scratch, 0, (int)Math.Min(scratch.Length, count - skipped));
                if (n == 0)
                    break;
                skipped += n;
            }
            return skipped;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    /// <summary>Checks that the network's own tensor table fits its spans: a broken table is a bug in the network, not in a file.</summary>
    private static void CheckNetworkTable(INetwork network)
    {
        int parameters = network.Parameters.Length, buffers = network.Buffers.Length, counters = network.Counters.Length;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (TensorInfo tensor in network.Tensors)
        {
            if (!names.Add(tensor.Name))
                throw new InvalidOperationException($"{network.NetworkName}: more than one tensor is named '{tensor.Name}'.");

            long elements = 1;
            foreach (int dimension in tensor.Shape)
                elements *= dimension;
            int spanLength = tensor.Kind switch
            {
                TensorKind.Parameter => parameters,
                TensorKind.Buffer => buffers,
                TensorKind.Counter => counters,
                _ => throw new InvalidOperationException($"{network.NetworkName}: tensor '{tensor.Name}' has an unknown kind {tensor.Kind}."),
            };
            if (elements != tensor.Length || tensor.Offset < 0 || tensor.Length < 0 || (long)tensor.Offset + tensor.Length > spanLength)
                throw new InvalidOperationException(
                    $"{network.NetworkName}: tensor '{tensor.Name}' (shape {FormatShape(tensor.Shape.Select(d => (long)d))}, offset {tensor.Offset}, length {tensor.Length}) does not fit its {KindName(tensor.Kind)} span of {spanLength} elements.");
        }
    }

    /// <summary>The bytes of one element of a safetensors dtype, or null for a dtype this reader does not know.</summary>
    private static int? DTypeSize(string dtype) => dtype switch
    {
        "BOOL" or "U8" or "I8" or "F8_E5M2" or "F8_E4M3" or "F8_E8M0" => 1,
        "I16" or "U16" or "F16" or "BF16" => 2,
        "I32" or "U32" or "F32" => 4,
        "I64" or "U64" or "F64" or "C64" => 8,
        _ => null,
    };

    private static int ElementSize(TensorKind kind) => kind == TensorKind.Counter ? sizeof(long) : sizeof(float);

    private static string KindName(TensorKind kind) => kind switch
    {
        TensorKind.Parameter => "parameter",
        TensorKind.Buffer => "buffer",
        _ => "counter",
    };

    /// <summary>The product of the dimensions, or null if it overflows a long.</summary>
    private static long? Product(long[] shape)
    {
        long product = 1;
        foreach (long dimension in shape)
        {
            if (dimension != 0 && product > long.MaxValue / dimension)
                return null;
            product *= dimension;
        }
        return product;
    }

    private static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => "value",
    };

    private static WeightFileException Fail(string? fileName, string problem) => new(fileName, new[] { problem });

    private static WeightFileException Fail(string? fileName, List<string> problems) => new(fileName, problems.ToArray());
}
