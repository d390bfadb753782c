using System;
using System.Buffers.Binary;
using System.Globalization;

namespace Unrolled.Data;

/// <summary>
/// Tells a JPEG or BMP file that ends before its image does. stb_image reads such files without an error (past
/// the end it reads zeros), so a half-copied file would load as an image whose lower part is black; PNG needs no
/// check (its compressed stream fails to inflate).
/// </summary>
internal static class ImageCompleteness
{
    /// <summary>Why <paramref name="bytes"/> is a truncated JPEG or BMP, or null (complete, another format, or malformed in a way the decoder reports).</summary>
    public static string? Truncation(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
            return Jpeg(bytes);
        if (bytes.Length >= 2 && bytes[0] == (byte)'B' && bytes[1] == (byte)'M')
            return Bmp(bytes);
        return null;
    }

    /// <summary>Walks the marker segments and the entropy-coded data of every scan up to the end-of-image marker (FF D9).</summary>
    private static string? Jpeg(ReadOnlySpan<byte> b)
    {
        int n = b.Length, i = 2;
        string Ends() => string.Create(CultureInfo.InvariantCulture, $"the JPEG data ends after {n:N0} bytes, before its end-of-image marker (FF D9)");
        while (true)
        {
            if (i >= n)
                return Ends();
            if (b[i] != 0xFF)
                return null; // not a marker where one must be: the decoder says what is wrong
            while (i < n && b[i] == 0xFF)
                i++; // fill bytes
            if (i >= n)
                return Ends();
            byte marker = b[i++];
            if (marker == 0xD9)
                return null; // end of image
            if (marker == 0x01 || marker is >= 0xD0 and <= 0xD7)
                continue; // markers without a length
            if (i + 2 > n)
                return Ends();
            int length = BinaryPrimitives.ReadUInt16BigEndian(b[i..]);
            if (length < 2)
                return null;
            i += length;
            if (i > n)
                return Ends();
            if (marker != 0xDA)
                continue;

            // A scan: entropy-coded bytes up to the next marker (FF then neither a stuffed 00 nor a restart marker).
            while (true)
            {
                if (i + 1 >= n)
                    return Ends();
                if (b[i] == 0xFF && b[i + 1] != 0x00 && b[i + 1] is not (>= 0xD0 and <= 0xD7))
                    break;
                i++;
            }
        }
    }

    /// <summary>An uncompressed BMP needs its pixel data offset plus |height| rows of ⌈width · bits / 32⌉ · 4 bytes.</summary>
    private static string? Bmp(ReadOnlySpan<byte> b)
    {
        if (b.Length < 26)
            return string.Create(CultureInfo.InvariantCulture, $"the BMP headers need at least 26 bytes, the file has {b.Length}");
        long offset = BinaryPrimitives.ReadUInt32LittleEndian(b[10..]);
        uint header = BinaryPrimitives.ReadUInt32LittleEndian(b[14..]);
        long width, height;
        int bits;
        uint compression;
        if (header == 12)
        {
            width = BinaryPrimitives.ReadUInt16LittleEndian(b[18..]);
            height = BinaryPrimitives.ReadUInt16LittleEndian(b[20..]);
            bits = BinaryPrimitives.ReadUInt16LittleEndian(b[24..]);
            compression = 0;
        }
        else
        {
            if (b.Length < 34)
                return string.Create(CultureInfo.InvariantCulture, $"the BMP headers need at least 34 bytes, the file has {b.Length}");
            width = BinaryPrimitives.ReadInt32LittleEndian(b[18..]);
            height = Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(b[22..]));
            bits = BinaryPrimitives.ReadUInt16LittleEndian(b[28..]);
            compression = BinaryPrimitives.ReadUInt32LittleEndian(b[30..]);
        }

        // Uncompressed or bit fields, of a size the decoder takes; anything else is left to the decoder.
        if (compression is not (0 or 3 or 6) || width < 1 || height < 1 || bits is not (1 or 4 or 8 or 16 or 24 or 32))
            return null;
        long stride = (width * bits + 31) / 32 * 4;
        long needed = offset + stride * height;
        return b.Length < needed
            ? string.Create(CultureInfo.InvariantCulture, $"the BMP's {width}×{height} pixels at {bits} bits need {needed:N0} bytes, the file has {b.Length:N0}")
            : null;
    }
}
