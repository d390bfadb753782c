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

    /// <summary>
    /// Writes <paramref name="header"/> and an opening brace, and indents; disposing the result closes the brace,
    /// followed by <paramref name="suffix"/> (";" or ")", say): <c>using (w.Block("for (...)")) { ... }</c>.
    /// </summary>
    /// <summary>Where the next line will start: a mark for <see cref="Unqualify"/>.</summary>
    public int Length => _text.Length;

    /// <summary>Removes each namespace prefix (<c>global::System.</c>) from the text written since
    /// <paramref name="start"/>, for code whose namespace declaration imports those namespaces. Prefixes are
    /// removed in the order given, so a longer one must come before a shorter one it starts with.</summary>
    public void Unqualify(int start, params string[] prefixes)
    {
        foreach (string prefix in prefixes) _text.Replace(prefix, "", start, _text.Length - start);
    }

    public Scope Block(string header, string suffix = "")
    {
        Open(header);
        return new Scope(this, suffix, blankLineAfter: false);
    }

    /// <summary>A bare block, <c>{ ... }</c>, that scopes the locals it declares (an empty line, then the brace).</summary>
    public Scope Braces() => Block("");

    /// <summary>As <see cref="Block"/>, for a member (method, constructor, property): the closing brace is followed by a
    /// blank line, which separates it from the next member.</summary>
    public Scope Member(string header, string suffix = "")
    {
        Open(header);
        return new Scope(this, suffix, blankLineAfter: true);
    }

    /// <summary>The braces of one <see cref="Block"/> or <see cref="Member"/>; <see cref="Dispose"/> closes them.</summary>
    public readonly struct Scope : System.IDisposable
    {
        private readonly CodeWriter _writer;
        private readonly string _suffix;
        private readonly bool _blankLineAfter;

        internal Scope(CodeWriter writer, string suffix, bool blankLineAfter)
        {
            _writer = writer;
            _suffix = suffix;
            _blankLineAfter = blankLineAfter;
        }

        /// <summary>Closes the braces; a default Scope (an optional block that was not opened) closes nothing.</summary>
        public void Dispose()
        {
            if (_writer is null) return;
            _writer.Close(_suffix);
            if (_blankLineAfter) _writer.Line();
        }
    }

    private void Open(string header)
    {
        Line(header);
        Line("{");
        _indent++;
    }

    private void Close(string suffix)
    {
        _indent--;
        Line("}" + suffix);
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
        if (count <= 0) return this;
        if (count > UnrolledCopyLimit)
            return Line($"global::System.Buffer.MemoryCopy({src}, {dst}, {count} * sizeof(float), {count} * sizeof(float));");
        if (count < 4)
        {
            for (int i = 0; i < count; i++) Line($"({dst})[{i}] = ({src})[{i}];");
            return this;
        }
        for (int i = 0; i + 4 <= count; i += 4) Line($"global::System.Runtime.Intrinsics.Vector128.Store(global::System.Runtime.Intrinsics.Vector128.Load({src} + {i}), {dst} + {i});");
        if (count % 4 != 0) Line($"global::System.Runtime.Intrinsics.Vector128.Store(global::System.Runtime.Intrinsics.Vector128.Load({src} + {count - 4}), {dst} + {count - 4});");
        return this;
    }

    /// <summary>Zeroes <paramref name="count"/> floats at <paramref name="dst"/> + <paramref name="from"/> (a short tail).</summary>
    public CodeWriter ZeroFloats(string dst, int from, int count)
    {
        if (count <= 0) return this;
        if (count > UnrolledCopyLimit)
            return Line($"new global::System.Span<float>({dst} + {from}, {count}).Clear();");
        int i = 0;
        for (; i + 4 <= count; i += 4) Line($"global::System.Runtime.Intrinsics.Vector128.Store(global::System.Runtime.Intrinsics.Vector128<float>.Zero, {dst} + {from + i});");
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

    /// <summary>
    /// A C# string literal holding exactly <paramref name="value"/>: quotes and backslashes escaped, and so are the
    /// characters that could end the literal or read as something else (control characters, C#'s new lines
    /// U+0085, U+2028 and U+2029, format characters such as bidirectional overrides, lone or paired surrogates,
    /// unassigned and private-use code points). Other characters, ASCII or not, are written as they are.
    /// </summary>
    public static string Str(string value)
    {
        var b = new StringBuilder("\"");
        foreach (char c in value)
        {
            b.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\0' => "\\0",
                '\a' => "\\a",
                '\b' => "\\b",
                '\f' => "\\f",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\v' => "\\v",
                _ when NeedsEscape(c) => "\\u" + ((int)c).ToString("X4", CultureInfo.InvariantCulture),
                _ => c.ToString(),
            });
        }
        return b.Append('"').ToString();
    }

    /// <summary>
    /// <paramref name="text"/> (a layer name, say) for a <c>//</c> comment: the characters <see cref="Str"/>
    /// escapes become <c>\uXXXX</c>, so that nothing can end the comment's line or upset the file's encoding.
    /// </summary>
    public static string Comment(string text)
    {
        var b = new StringBuilder(text.Length);
        foreach (char c in text)
            b.Append(NeedsEscape(c) ? "\\u" + ((int)c).ToString("X4", CultureInfo.InvariantCulture) : c.ToString());
        return b.ToString();
    }

    /// <summary><paramref name="text"/> for an XML doc comment: as for <see cref="Comment"/>, and with <c>&amp;</c>,
    /// <c>&lt;</c> and <c>&gt;</c> as entities, so that it stays well-formed XML (CS1570 otherwise).</summary>
    public static string Doc(string text) => Comment(text).Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");

    private static bool NeedsEscape(char c) =>
        char.IsControl(c) || char.IsSurrogate(c) || CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.LineSeparator
            or UnicodeCategory.ParagraphSeparator or UnicodeCategory.Format or UnicodeCategory.OtherNotAssigned or UnicodeCategory.PrivateUse;

    /// <summary>A number with thousands separators, for comments and summaries.</summary>
    public static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
