using System.Globalization;
using System.Text;

namespace Unrolled.Generator;

/// <summary>A minimal indented text writer for emitted source.</summary>
internal sealed class CodeWriter
{
    private readonly StringBuilder _text = new();
    private int _indent;

    public CodeWriter Line(string line = "")
    {
        if (line.Length > 0) _text.Append(' ', _indent * 4).Append(line);
        _text.Append('\n');
        return this;
    }

    /// <summary>Writes <paramref name="header"/> and an opening brace, and indents.</summary>
    public CodeWriter Open(string header)
    {
        Line(header);
        Line("{");
        _indent++;
        return this;
    }

    public CodeWriter Close(string suffix = "")
    {
        _indent--;
        Line("}" + suffix);
        return this;
    }

    public override string ToString() => _text.ToString();

    /// <summary>Longest row, in floats, that <see cref="CopyFloats"/> unrolls into vector moves.</summary>
    public const int UnrolledCopyLimit = 32;

    /// <summary>
    /// Copies <paramref name="count"/> floats from <paramref name="src"/> to <paramref name="dst"/> (pointer
    /// expressions; the ranges must not overlap). Short rows become straight-line 4-float moves, the last one
    /// overlapping its predecessor, so the many row copies of the padded layouts cost no call; longer rows use
    /// <c>Buffer.MemoryCopy</c>.
    /// </summary>
    public CodeWriter CopyFloats(string dst, string src, int count)
    {
        if (count > UnrolledCopyLimit || count <= 0)
            return count <= 0 ? this : Line($"global::System.Buffer.MemoryCopy({src}, {dst}, {count} * sizeof(float), {count} * sizeof(float));");
        if (count < 4)
        {
            for (int i = 0; i < count; i++) Line($"({dst})[{i}] = ({src})[{i}];");
            return this;
        }
        for (int i = 0; i + 4 <= count; i += 4) Line($"Vec128.Store(Vec128.Load({src} + {i}), {dst} + {i});");
        if (count % 4 != 0) Line($"Vec128.Store(Vec128.Load({src} + {count - 4}), {dst} + {count - 4});");
        return this;
    }

    /// <summary>Zeroes <paramref name="count"/> floats at <paramref name="dst"/> + <paramref name="from"/> (a short tail).</summary>
    public CodeWriter ZeroFloats(string dst, int from, int count)
    {
        if (count <= 0) return this;
        if (count > UnrolledCopyLimit)
            return Line($"new global::System.Span<float>({dst} + {from}, {count}).Clear();");
        int i = 0;
        for (; i + 4 <= count; i += 4) Line($"Vec128.Store(Vec128F.Zero, {dst} + {from + i});");
        for (; i < count; i++) Line($"({dst})[{from + i}] = 0f;");
        return this;
    }

    /// <summary>A float literal that round-trips.</summary>
    public static string F(double value)
    {
        float f = (float)value;
        if (float.IsPositiveInfinity(f)) return "float.PositiveInfinity";
        if (float.IsNegativeInfinity(f)) return "float.NegativeInfinity";
        if (float.IsNaN(f)) return "float.NaN";
        string s = f.ToString("R", CultureInfo.InvariantCulture);
        if (!s.Contains(".") && !s.Contains("E")) s += ".0";
        return s + "f";
    }

    /// <summary>A double literal that round-trips.</summary>
    public static string D(double value)
    {
        string s = value.ToString("R", CultureInfo.InvariantCulture);
        if (!s.Contains(".") && !s.Contains("E")) s += ".0";
        return s;
    }

    /// <summary>An integer in the invariant culture (a negative one keeps an ASCII minus sign).</summary>
    public static string I(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A number with thousands separators, for comments and summaries.</summary>
    public static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
