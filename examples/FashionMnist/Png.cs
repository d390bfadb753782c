using System;
using System.Buffers.Binary;
using System.IO;
using System.IO.Compression;
using System.Text;

namespace FashionMnist;

/// <summary>
/// A minimal PNG encoder: 8-bit greyscale or RGB, no interlacing, filter type 0 on every row,
/// one IDAT chunk compressed with zlib. Enough for the report's small pictures.
/// </summary>
public static class Png
{
    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
    private static readonly uint[] CrcTable = BuildCrcTable();

    /// <summary>
    /// Encodes <paramref name="width"/> × <paramref name="height"/> pixels, row-major, with
    /// <paramref name="channels"/> bytes per pixel: 1 (greyscale) or 3 (RGB).
    /// </summary>
    public static byte[] Encode(int width, int height, int channels, ReadOnlySpan<byte> pixels)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "PNG pictures here have 1 (grey) or 3 (RGB) channels.");
        int stride = checked(width * channels);
        if (pixels.Length != checked(stride * height))
            throw new ArgumentException($"{width}×{height}×{channels} pixels need {stride * height} bytes, not {pixels.Length}.", nameof(pixels));

        // IHDR: width, height, bit depth 8, colour type 0 (grey) or 2 (RGB), compression 0, filter 0, no interlace.
        byte[] header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(0), width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8;
        header[9] = channels == 1 ? (byte)0 : (byte)2;

        // IDAT: each row prefixed with its filter type (0: none), the whole zlib-compressed.
        byte[] compressed;
        using (var buffer = new MemoryStream())
        {
            using (var zlib = new ZLibStream(buffer, CompressionLevel.SmallestSize, leaveOpen: true))
            {
                byte[] none = [0];
                for (int y = 0; y < height; y++)
                {
                    zlib.Write(none);
                    zlib.Write(pixels.Slice(y * stride, stride));
                }
            }
            compressed = buffer.ToArray();
        }

        using var png = new MemoryStream(compressed.Length + 64);
        png.Write(Signature);
        WriteChunk(png, "IHDR", header);
        WriteChunk(png, "IDAT", compressed);
        WriteChunk(png, "IEND", ReadOnlySpan<byte>.Empty);
        return png.ToArray();
    }

    /// <summary>The picture as a <c>data:</c> URI, for an <c>img</c> element's <c>src</c>.</summary>
    public static string DataUri(byte[] png) => "data:image/png;base64," + Convert.ToBase64String(png);

    /// <summary>Enlarges a picture by repeating each pixel <paramref name="scale"/> × <paramref name="scale"/> times (nearest neighbour).</summary>
    public static byte[] Upscale(ReadOnlySpan<byte> pixels, int width, int height, int channels, int scale)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(scale, 1);
        int outWidth = checked(width * scale), outStride = checked(outWidth * channels);
        var result = new byte[checked(outStride * height * scale)];
        for (int y = 0; y < height; y++)
        {
            Span<byte> row = result.AsSpan(y * scale * outStride, outStride);
            for (int x = 0; x < width; x++)
            {
                ReadOnlySpan<byte> pixel = pixels.Slice((y * width + x) * channels, channels);
                for (int s = 0; s < scale; s++)
                    pixel.CopyTo(row.Slice((x * scale + s) * channels, channels));
            }
            for (int s = 1; s < scale; s++)
                row.CopyTo(result.AsSpan((y * scale + s) * outStride, outStride));
        }
        return result;
    }

    /// <summary>The CRC-32 (ISO 3309, as PNG uses) of <paramref name="data"/>, continuing from <paramref name="crc"/>.</summary>
    public static uint Crc32(ReadOnlySpan<byte> data, uint crc = 0)
    {
        uint c = ~crc;
        foreach (byte b in data)
            c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return ~c;
    }

    private static void WriteChunk(Stream stream, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        stream.Write(word);
        byte[] typeBytes = Encoding.ASCII.GetBytes(type);
        stream.Write(typeBytes);
        stream.Write(data);
        // The CRC covers the chunk type and data, not the length.
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(data, Crc32(typeBytes)));
        stream.Write(word);
    }

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++)
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }
}
