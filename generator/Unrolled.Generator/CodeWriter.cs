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
